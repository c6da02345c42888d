//! The vocabulary of template values: checked logical ids, typed handles to
//! resources, and expressions (`Ref`, `Fn::GetAtt`, `Fn::Sub`, pseudo
//! parameters) built from those handles — never from hand-typed strings.

use std::fmt;
use std::marker::PhantomData;

/// A CloudFormation logical id: 1 to 255 ASCII letters and digits.
///
/// Ids are constants in code; [`LogicalId::new`] is a `const fn`, so a bad id
/// fails the build, not a deployment. Renaming one replaces the resource, so
/// they never change once shipped — except where replacing is the point: an
/// immutable resource (an API Gateway deployment) takes a hash of its content
/// as a suffix ([`LogicalId::with_content_hash`]), so new content is a new
/// resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogicalId {
    base: &'static str,
    /// 40 bits of a content hash, written as 10 hex digits after `base`.
    content_hash: Option<u64>,
}

impl LogicalId {
    pub const fn new(id: &'static str) -> Self {
        let bytes = id.as_bytes();
        assert!(
            !bytes.is_empty() && bytes.len() <= 255,
            "logical id must be 1..=255 characters"
        );
        let mut i = 0;
        while i < bytes.len() {
            assert!(
                bytes[i].is_ascii_alphanumeric(),
                "logical id must be ASCII letters and digits"
            );
            i += 1;
        }
        assert!(
            bytes.len() <= 255 - HASH_DIGITS,
            "logical id must leave room for a content hash"
        );
        Self {
            base: id,
            content_hash: None,
        }
    }

    /// This id with a suffix derived from `content` (SHA-256, 40 bits): the
    /// same content gives the same id, other content another one.
    #[must_use]
    pub fn with_content_hash(self, content: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(content);
        let hash = digest
            .iter()
            .take(HASH_DIGITS / 2)
            .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
        Self {
            base: self.base,
            content_hash: Some(hash),
        }
    }

    /// The id as written in code, without a content hash.
    pub const fn base(self) -> &'static str {
        self.base
    }

    /// The fixed id as written in code; `None` for one with a content hash,
    /// whose full id only its `Display` gives.
    pub const fn fixed(self) -> Option<&'static str> {
        match self.content_hash {
            None => Some(self.base),
            Some(_) => None,
        }
    }
}

/// Hex digits of a content hash suffix.
const HASH_DIGITS: usize = 10;

impl fmt::Display for LogicalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base)?;
        match self.content_hash {
            Some(hash) => write!(f, "{hash:0HASH_DIGITS$X}"),
            None => Ok(()),
        }
    }
}

/// A typed handle to a resource (or parameter) of kind `T`.
///
/// Attribute accessors exist only where the resource type has that attribute
/// (see `model`), so `table.arn()` compiles and `role.root_resource_id()`
/// does not.
pub struct Handle<T> {
    id: LogicalId,
    kind: PhantomData<fn() -> T>,
}

impl<T> Handle<T> {
    pub(crate) const fn new(id: LogicalId) -> Self {
        Self {
            id,
            kind: PhantomData,
        }
    }

    pub fn id(&self) -> LogicalId {
        self.id
    }

    /// `{"Ref": id}`: the resource's primary identifier.
    pub(crate) fn reference(&self) -> Reference {
        Reference::Ref(self.id)
    }

    /// `{"Fn::GetAtt": [id, attribute]}`.
    pub(crate) fn attribute(&self, attribute: &'static str) -> Reference {
        Reference::GetAtt(self.id, attribute)
    }
}

impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Handle<T> {}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.id)
    }
}

/// CloudFormation pseudo parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pseudo {
    AccountId,
    Partition,
    Region,
    StackName,
    UrlSuffix,
}

impl Pseudo {
    pub fn name(self) -> &'static str {
        match self {
            Self::AccountId => "AWS::AccountId",
            Self::Partition => "AWS::Partition",
            Self::Region => "AWS::Region",
            Self::StackName => "AWS::StackName",
            Self::UrlSuffix => "AWS::URLSuffix",
        }
    }
}

/// A value known only when the stack is deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    Ref(LogicalId),
    GetAtt(LogicalId, &'static str),
    Pseudo(Pseudo),
}

impl Reference {
    /// The logical id this reference depends on, if any.
    pub fn target(self) -> Option<LogicalId> {
        match self {
            Self::Ref(id) | Self::GetAtt(id, _) => Some(id),
            Self::Pseudo(_) => None,
        }
    }

    /// How the reference is written inside an `Fn::Sub` string.
    fn sub_variable(self) -> String {
        match self {
            Self::Ref(id) => format!("${{{id}}}"),
            Self::GetAtt(id, attribute) => format!("${{{id}.{attribute}}}"),
            Self::Pseudo(pseudo) => format!("${{{}}}", pseudo.name()),
        }
    }
}

/// One piece of an `Fn::Sub` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubPart {
    Literal(String),
    Reference(Reference),
}

/// A value in a template.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Str(String),
    Int(i64),
    Bool(bool),
    List(Vec<Expr>),
    /// An ordered map: keys keep the order they were given in.
    Map(Vec<(String, Expr)>),
    Reference(Reference),
    Sub(Vec<SubPart>),
}

impl Expr {
    pub fn str(value: impl Into<String>) -> Self {
        Self::Str(value.into())
    }

    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Expr)>) -> Self {
        Self::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn list(items: impl IntoIterator<Item = Expr>) -> Self {
        Self::List(items.into_iter().collect())
    }

    pub fn strings<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Self {
        Self::List(items.into_iter().map(|s| Self::str(s.as_ref())).collect())
    }

    /// Every logical id this value refers to, in order of appearance.
    pub fn targets(&self) -> Vec<LogicalId> {
        let mut out = Vec::new();
        self.collect_targets(&mut out);
        out
    }

    fn collect_targets(&self, out: &mut Vec<LogicalId>) {
        match self {
            Self::Str(_) | Self::Int(_) | Self::Bool(_) => {}
            Self::List(items) => items.iter().for_each(|item| item.collect_targets(out)),
            Self::Map(entries) => entries.iter().for_each(|(_, v)| v.collect_targets(out)),
            Self::Reference(reference) => out.extend(reference.target()),
            Self::Sub(parts) => out.extend(parts.iter().filter_map(|part| match part {
                SubPart::Reference(reference) => reference.target(),
                SubPart::Literal(_) => None,
            })),
        }
    }

    /// The JSON form CloudFormation reads.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::{Map, Value, json};
        match self {
            Self::Str(s) => Value::String(s.clone()),
            Self::Int(i) => json!(i),
            Self::Bool(b) => Value::Bool(*b),
            Self::List(items) => Value::Array(items.iter().map(Expr::to_json).collect()),
            Self::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect::<Map<_, _>>(),
            ),
            Self::Reference(Reference::Ref(id)) => json!({ "Ref": id.to_string() }),
            Self::Reference(Reference::Pseudo(pseudo)) => json!({ "Ref": pseudo.name() }),
            Self::Reference(Reference::GetAtt(id, attribute)) => {
                json!({ "Fn::GetAtt": [id.to_string(), attribute] })
            }
            Self::Sub(parts) => {
                let has_variables = parts.iter().any(|p| matches!(p, SubPart::Reference(_)));
                let mut text = String::new();
                for part in parts {
                    match part {
                        // `${` in a literal must be written `${!` inside Fn::Sub.
                        SubPart::Literal(s) if has_variables => {
                            text.push_str(&s.replace("${", "${!"));
                        }
                        SubPart::Literal(s) => text.push_str(s),
                        SubPart::Reference(reference) => text.push_str(&reference.sub_variable()),
                    }
                }
                // A Sub without variables is just a string (cfn-lint W1020).
                if has_variables {
                    json!({ "Fn::Sub": text })
                } else {
                    Value::String(text)
                }
            }
        }
    }
}

impl From<Reference> for Expr {
    fn from(reference: Reference) -> Self {
        Self::Reference(reference)
    }
}

impl From<&str> for Expr {
    fn from(value: &str) -> Self {
        Self::str(value)
    }
}

impl From<String> for Expr {
    fn from(value: String) -> Self {
        Self::Str(value)
    }
}

impl From<u32> for Expr {
    fn from(value: u32) -> Self {
        Self::Int(i64::from(value))
    }
}

impl From<bool> for Expr {
    fn from(value: bool) -> Self {
        Self::Bool(value)
    }
}

/// Builds an `Fn::Sub` from literals and typed references.
#[derive(Debug, Default, Clone)]
pub struct Sub(Vec<SubPart>);

impl Sub {
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn lit(mut self, text: impl Into<String>) -> Self {
        self.0.push(SubPart::Literal(text.into()));
        self
    }

    #[must_use]
    pub fn var(mut self, reference: Reference) -> Self {
        self.0.push(SubPart::Reference(reference));
        self
    }

    #[must_use]
    pub fn pseudo(self, pseudo: Pseudo) -> Self {
        self.var(Reference::Pseudo(pseudo))
    }

    pub fn build(self) -> Expr {
        Expr::Sub(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BUCKET: LogicalId = LogicalId::new("PhotoBucket");

    #[test]
    fn sub_renders_typed_references() {
        let handle: Handle<()> = Handle::new(BUCKET);
        let expr = Sub::new()
            .lit("arn:")
            .pseudo(Pseudo::Partition)
            .lit(":s3:::")
            .var(handle.reference())
            .lit("/photos/*")
            .build();
        assert_eq!(
            expr.to_json(),
            json!({"Fn::Sub": "arn:${AWS::Partition}:s3:::${PhotoBucket}/photos/*"})
        );
        assert_eq!(expr.targets(), vec![BUCKET]);
    }

    #[test]
    fn sub_without_variables_is_a_plain_string() {
        let expr = Sub::new().lit("plain ${text}").build();
        assert_eq!(expr.to_json(), json!("plain ${text}"));
    }

    #[test]
    fn literal_dollar_braces_are_escaped_inside_a_real_sub() {
        let handle: Handle<()> = Handle::new(BUCKET);
        let expr = Sub::new().lit("${x}-").var(handle.reference()).build();
        assert_eq!(expr.to_json(), json!({"Fn::Sub": "${!x}-${PhotoBucket}"}));
    }

    #[test]
    fn get_att_and_ref_render() {
        let handle: Handle<()> = Handle::new(BUCKET);
        assert_eq!(
            Expr::from(handle.attribute("Arn")).to_json(),
            json!({"Fn::GetAtt": ["PhotoBucket", "Arn"]})
        );
        assert_eq!(
            Expr::from(handle.reference()).to_json(),
            json!({"Ref": "PhotoBucket"})
        );
        assert_eq!(
            Expr::from(Reference::Pseudo(Pseudo::Region)).to_json(),
            json!({"Ref": "AWS::Region"})
        );
    }
}
