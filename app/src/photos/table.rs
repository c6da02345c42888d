//! Photos in the one DynamoDB table: partition `user_id` (the Cognito `sub`),
//! sort `photo_id` (a ULID, so newest first is a reverse `Query`). Never a
//! `Scan`; every call names the user, so nobody reaches another's photos.
//!
//! The search index lives beside the photos, in a partition of its own per
//! user (`<sub>#search`, which no Cognito `sub` can be): one small item per
//! normalised word of a photo's tags, place and description, keyed
//! `<word>#<photo id>`. A search is a `Query` of the words that begin with
//! the query's longest word, so it reads only what matches, however large
//! the album. A photo and its index items are written, changed and deleted
//! in one transaction, so they never disagree.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, KeysAndAttributes, Put, TransactWriteItem};
use base64::Engine as _;

use contract::table::{PARTITION_KEY, SORT_KEY, TAKEN_AT};

use super::{Photo, is_photo_id};
use crate::metrics;

/// A photo has at most this many index words (tags first, then its place,
/// then its description): an edit's transaction (the item, the words that
/// go, the words that come) stays under DynamoDB's 100 actions.
pub const MAX_TERMS: usize = 48;
/// Longer words are indexed by their first this many characters.
pub const MAX_TERM_CHARS: usize = 40;
/// A search uses at most this many words.
pub const MAX_QUERY_WORDS: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error(
        "dynamodb `{action}` on table `{table}` failed: {detail}; check that the table exists and that the function's role allows `dynamodb:{action}` on it"
    )]
    Aws {
        action: &'static str,
        table: String,
        detail: String,
    },
    #[error("this photo was changed or deleted meanwhile; reload it and try again")]
    Changed,
    #[error("photo `{0}` is already stored")]
    Exists(String),
    #[error("a search may have at most {MAX_QUERY_WORDS} words")]
    TooManyWords,
    /// Another request is finishing this upload.
    #[error("upload `{0}` is being finished by another request")]
    Claimed(String),
}

/// A claim older than this is from a request that died (Lambda runs at most
/// 15 minutes): another request may take it over.
pub const STALE_CLAIM_SECS: u64 = 16 * 60;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}
fn n(v: &impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The words of `text`, lower-cased: runs of letters and digits.
pub fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase().chars().take(MAX_TERM_CHARS).collect())
}

/// The words a photo is found by: those of its tags, then its place, then
/// its description, at most [`MAX_TERMS`] distinct ones.
pub fn terms(photo: &Photo) -> BTreeSet<String> {
    let place = [&photo.city, &photo.country, &photo.address];
    let texts = photo
        .tags
        .iter()
        .chain(place.into_iter().flatten())
        .chain(std::iter::once(&photo.description));
    let mut out = BTreeSet::new();
    for word in texts.flat_map(|t| words(t)) {
        if out.len() == MAX_TERMS {
            break;
        }
        out.insert(word);
    }
    out
}

/// A parsed search: its distinct words, the longest first (it is the one
/// the index is read by; the others are checked on the photos found).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    words: Vec<String>,
}

impl SearchQuery {
    pub fn parse(text: &str) -> Result<Self, TableError> {
        let mut list: Vec<String> = Vec::new();
        for word in words(text) {
            if !list.contains(&word) {
                list.push(word);
            }
        }
        if list.len() > MAX_QUERY_WORDS {
            return Err(TableError::TooManyWords);
        }
        // Stable: equally long words keep the order they were typed in.
        list.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        Ok(Self { words: list })
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// Whether each word begins one of the photo's words.
    pub fn matches(&self, photo: &Photo) -> bool {
        let terms = terms(photo);
        self.words
            .iter()
            .all(|w| terms.iter().any(|t| t.starts_with(w.as_str())))
    }
}

fn index_partition(user: &str) -> String {
    format!("{user}#search")
}

fn claim_partition(user: &str) -> String {
    format!("{user}#uploads")
}

fn claim_key(user: &str, id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PARTITION_KEY.to_owned(), s(&claim_partition(user))),
        (SORT_KEY.to_owned(), s(id)),
    ])
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn index_key(user: &str, term: &str, id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PARTITION_KEY.to_owned(), s(&index_partition(user))),
        (SORT_KEY.to_owned(), s(&format!("{term}#{id}"))),
    ])
}

/// The photo id at the end of an index item's sort key.
fn indexed_id(sort_key: &str) -> Option<&str> {
    let (_, id) = sort_key.rsplit_once('#')?;
    is_photo_id(id).then_some(id)
}

fn item(user: &str, p: &Photo) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::from([
        (PARTITION_KEY.to_owned(), s(user)),
        (SORT_KEY.to_owned(), s(&p.id)),
        ("description".to_owned(), s(&p.description)),
        ("filename".to_owned(), s(&p.filename)),
        ("ext".to_owned(), s(&p.ext)),
        ("content_type".to_owned(), s(&p.content_type)),
        ("size".to_owned(), n(&p.size)),
        ("width".to_owned(), n(&p.width)),
        ("height".to_owned(), n(&p.height)),
        ("uploaded_at".to_owned(), s(&p.uploaded_at)),
        ("rev".to_owned(), n(&p.rev)),
        (
            "tags".to_owned(),
            AttributeValue::L(p.tags.iter().map(|t| s(t)).collect()),
        ),
    ]);
    let optional = [
        (TAKEN_AT, p.taken_at.as_deref()),
        ("make", p.make.as_deref()),
        ("model", p.model.as_deref()),
        ("city", p.city.as_deref()),
        ("country", p.country.as_deref()),
        ("address", p.address.as_deref()),
    ];
    for (name, value) in optional {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            item.insert(name.to_owned(), s(value));
        }
    }
    if let (Some(lat), Some(lng)) = (p.lat, p.lng) {
        item.insert("lat".to_owned(), n(&lat));
        item.insert("lng".to_owned(), n(&lng));
    }
    item
}

fn photo(item: &HashMap<String, AttributeValue>) -> Option<Photo> {
    let text = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let num = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let int = |k: &str| {
        item.get(k)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some(Photo {
        id: text(SORT_KEY).filter(|id| is_photo_id(id))?,
        tags: item
            .get("tags")
            .and_then(|v| v.as_l().ok())
            .map(|l| l.iter().filter_map(|t| t.as_s().ok().cloned()).collect())
            .unwrap_or_default(),
        description: text("description").unwrap_or_default(),
        filename: text("filename").unwrap_or_default(),
        ext: text("ext")?,
        content_type: text("content_type").unwrap_or_default(),
        size: int("size").unwrap_or(0),
        width: u32::try_from(int("width").unwrap_or(0)).unwrap_or(0),
        height: u32::try_from(int("height").unwrap_or(0)).unwrap_or(0),
        lat: num("lat"),
        lng: num("lng"),
        taken_at: text(TAKEN_AT),
        uploaded_at: text("uploaded_at").unwrap_or_default(),
        make: text("make"),
        model: text("model"),
        city: text("city"),
        country: text("country"),
        address: text("address"),
        rev: int("rev").unwrap_or(0),
    })
}

/// A page of the album or of a search.
#[derive(Debug, Clone)]
pub struct Page {
    pub photos: Vec<Photo>,
    /// Opaque: where the next page starts.
    pub next: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub ddb: Client,
    pub table: String,
}

/// A transaction's actions, built one after another.
#[derive(Default)]
struct Transaction {
    actions: Vec<TransactWriteItem>,
    /// A builder refused an action (a required field missing).
    invalid: Option<String>,
}

impl Transaction {
    fn put(
        &mut self,
        table: &str,
        item: HashMap<String, AttributeValue>,
        condition: Option<String>,
    ) {
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .set_condition_expression(condition);
        match put.build() {
            Ok(put) => self
                .actions
                .push(TransactWriteItem::builder().put(put).build()),
            Err(e) => self.invalid = Some(e.to_string()),
        }
    }

    fn delete(
        &mut self,
        table: &str,
        key: HashMap<String, AttributeValue>,
        condition: Option<String>,
    ) {
        let delete = Delete::builder()
            .table_name(table)
            .set_key(Some(key))
            .set_condition_expression(condition);
        match delete.build() {
            Ok(delete) => self
                .actions
                .push(TransactWriteItem::builder().delete(delete).build()),
            Err(e) => self.invalid = Some(e.to_string()),
        }
    }
}

impl Store {
    fn aws(&self, action: &'static str, err: impl std::error::Error) -> TableError {
        TableError::Aws {
            action,
            table: self.table.clone(),
            detail: DisplayErrorContext(err).to_string(),
        }
    }

    /// Stores a new photo and its index words; never overwrites one. With
    /// `claim`, the upload's claim (see [`Store::claim`]) is released in the
    /// same transaction, and only if it is still this token's.
    pub async fn put(
        &self,
        user: &str,
        photo: &Photo,
        claim: Option<&str>,
    ) -> Result<(), TableError> {
        let mut tx = Transaction::default();
        let condition = format!("attribute_not_exists({SORT_KEY})");
        tx.put(&self.table, item(user, photo), Some(condition));
        for term in terms(photo) {
            tx.put(&self.table, index_key(user, &term, &photo.id), None);
        }
        if let Some(token) = claim {
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(claim_key(user, &photo.id)))
                .condition_expression("claim_token = :t")
                .expression_attribute_values(":t", s(token));
            match delete.build() {
                Ok(delete) => tx
                    .actions
                    .push(TransactWriteItem::builder().delete(delete).build()),
                Err(e) => tx.invalid = Some(e.to_string()),
            }
        }
        self.commit(tx, || TableError::Exists(photo.id.clone()))
            .await
    }

    /// Claims the right to finish upload `id` for the request holding
    /// `token`: one request at a time writes a photo's objects, so none ever
    /// deletes what another wrote. A claim older than [`STALE_CLAIM_SECS`]
    /// is taken over.
    pub async fn claim(&self, user: &str, id: &str, token: &str) -> Result<(), TableError> {
        let now = now_secs();
        let mut item = claim_key(user, id);
        item.insert("claim_token".to_owned(), s(token));
        item.insert("claimed_at".to_owned(), n(&now));
        let sent = self
            .ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(format!(
                "attribute_not_exists({SORT_KEY}) OR claimed_at < :stale"
            ))
            .expression_attribute_values(":stale", n(&now.saturating_sub(STALE_CLAIM_SECS)))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(aws_sdk_dynamodb::operation::put_item::PutItemError::is_conditional_check_failed_exception) =>
            {
                Err(TableError::Claimed(id.to_owned()))
            }
            Err(err) => Err(self.aws("PutItem", err)),
        }
    }

    /// Gives up a claim, if it is still this token's.
    pub async fn release(&self, user: &str, id: &str, token: &str) -> Result<(), TableError> {
        let sent = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(user, id)))
            .condition_expression("claim_token = :t")
            .expression_attribute_values(":t", s(token))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::is_conditional_check_failed_exception) =>
            {
                Ok(())
            }
            Err(err) => Err(self.aws("DeleteItem", err)),
        }
    }

    /// Whether a request holds the claim of upload `id`.
    pub async fn claim_exists(&self, user: &str, id: &str) -> Result<bool, TableError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .set_key(Some(claim_key(user, id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", e))?;
        Ok(out.item.is_some())
    }

    /// How many index items name photo `id` (a `Query` of the user's index
    /// partition; for tests and checks, not for pages).
    pub async fn indexed(&self, user: &str, id: &str) -> Result<usize, TableError> {
        let mut count = 0;
        let mut start = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression(format!("{PARTITION_KEY} = :p"))
                .expression_attribute_values(":p", s(&index_partition(user)))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| self.aws("Query", e))?;
            count += out
                .items()
                .iter()
                .filter_map(|i| i.get(SORT_KEY)?.as_s().ok())
                .filter(|k| indexed_id(k) == Some(id))
                .count();
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(count);
            }
        }
    }

    /// Replaces the details of `old` with `new` (same id, revision `old`'s
    /// plus one), moving its index words, if nobody changed it meanwhile.
    pub async fn update(&self, user: &str, old: &Photo, new: &Photo) -> Result<(), TableError> {
        let mut new = new.clone();
        new.rev = old.rev + 1;
        let (before, after) = (terms(old), terms(&new));
        let mut tx = Transaction::default();
        tx.put(
            &self.table,
            item(user, &new),
            Some(Self::unchanged_since(old.rev)),
        );
        for gone in before.difference(&after) {
            tx.delete(&self.table, index_key(user, gone, &old.id), None);
        }
        for came in after.difference(&before) {
            tx.put(&self.table, index_key(user, came, &new.id), None);
        }
        self.commit_with_rev(tx, old.rev).await
    }

    /// Deletes the photo's item and its index words, if nobody changed it
    /// since it was read.
    pub async fn delete(&self, user: &str, photo: &Photo) -> Result<(), TableError> {
        let mut tx = Transaction::default();
        let key = HashMap::from([
            (PARTITION_KEY.to_owned(), s(user)),
            (SORT_KEY.to_owned(), s(&photo.id)),
        ]);
        tx.delete(&self.table, key, Some(Self::unchanged_since(photo.rev)));
        for term in terms(photo) {
            tx.delete(&self.table, index_key(user, &term, &photo.id), None);
        }
        self.commit_with_rev(tx, photo.rev).await
    }

    fn unchanged_since(rev: u64) -> String {
        if rev == 0 {
            format!("attribute_exists({SORT_KEY}) AND (attribute_not_exists(rev) OR rev = :rev)")
        } else {
            format!("attribute_exists({SORT_KEY}) AND rev = :rev")
        }
    }

    async fn commit_with_rev(&self, mut tx: Transaction, rev: u64) -> Result<(), TableError> {
        // The first action carries the condition; it names `:rev`.
        if let Some(first) = tx.actions.first_mut() {
            if let Some(put) = first.put.as_mut() {
                put.expression_attribute_values =
                    Some(HashMap::from([(":rev".to_owned(), n(&rev))]));
            }
            if let Some(delete) = first.delete.as_mut() {
                delete.expression_attribute_values =
                    Some(HashMap::from([(":rev".to_owned(), n(&rev))]));
            }
        }
        self.commit(tx, || TableError::Changed).await
    }

    async fn commit(
        &self,
        tx: Transaction,
        refused: impl FnOnce() -> TableError,
    ) -> Result<(), TableError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        if let Some(detail) = tx.invalid {
            return Err(TableError::Aws {
                action: "TransactWriteItems",
                table: self.table.clone(),
                detail,
            });
        }
        match self
            .ddb
            .transact_write_items()
            .set_transact_items(Some(tx.actions))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // A condition failed, or another transaction held the items.
            Err(err)
                if matches!(
                    err.as_service_error(),
                    Some(TransactWriteItemsError::TransactionCanceledException(_))
                ) =>
            {
                Err(refused())
            }
            Err(err) => Err(self.aws("TransactWriteItems", err)),
        }
    }

    pub async fn get(&self, user: &str, id: &str) -> Result<Option<Photo>, TableError> {
        if !is_photo_id(id) {
            return Ok(None);
        }
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key(PARTITION_KEY, s(user))
            .key(SORT_KEY, s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.aws("GetItem", e))?;
        metrics::items_read(usize::from(out.item.is_some()));
        Ok(out.item.as_ref().and_then(photo))
    }

    /// A `Query` of the user's own partition, newest first.
    fn newest_first(
        &self,
        user: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        self.ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!("{PARTITION_KEY} = :u"))
            .expression_attribute_values(":u", s(user))
            .scan_index_forward(false)
    }

    /// The album, newest first, `limit` at a time from `cursor`.
    pub async fn page(
        &self,
        user: &str,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<Page, TableError> {
        let mut query = self.newest_first(user).limit(limit);
        if let Some(start) = cursor.and_then(decode_cursor).filter(|c| is_photo_id(c)) {
            query = query
                .exclusive_start_key(PARTITION_KEY, s(user))
                .exclusive_start_key(SORT_KEY, s(&start));
        }
        let out = query.send().await.map_err(|e| self.aws("Query", e))?;
        metrics::items_read(out.items().len());
        let photos: Vec<Photo> = out.items().iter().filter_map(photo).collect();
        let next = out
            .last_evaluated_key()
            .and_then(|k| k.get(SORT_KEY))
            .and_then(|v| v.as_s().ok())
            .map(|id| encode_cursor(id));
        Ok(Page { photos, next })
    }

    /// Photos whose words begin with each of the query's words, `limit`
    /// index items at a time from `cursor`: one `Query` of the index (the
    /// longest word's prefix) and one `BatchGetItem` of the photos found.
    pub async fn search(
        &self,
        user: &str,
        query: &SearchQuery,
        cursor: Option<&str>,
        limit: i32,
    ) -> Result<Page, TableError> {
        let Some(main) = query.words.first() else {
            return Ok(Page {
                photos: Vec::new(),
                next: None,
            });
        };
        let mut request = self
            .ddb
            .query()
            .table_name(&self.table)
            .key_condition_expression(format!(
                "{PARTITION_KEY} = :p AND begins_with({SORT_KEY}, :w)"
            ))
            .expression_attribute_values(":p", s(&index_partition(user)))
            .expression_attribute_values(":w", s(main))
            .scan_index_forward(false)
            .limit(limit);
        let start = cursor
            .and_then(decode_cursor)
            .filter(|k| k.starts_with(main.as_str()) && indexed_id(k).is_some());
        if let Some(start) = start {
            request = request
                .exclusive_start_key(PARTITION_KEY, s(&index_partition(user)))
                .exclusive_start_key(SORT_KEY, s(&start));
        }
        let out = request.send().await.map_err(|e| self.aws("Query", e))?;
        metrics::items_read(out.items().len());
        let mut ids: Vec<&str> = Vec::new();
        for id in out
            .items()
            .iter()
            .filter_map(|i| i.get(SORT_KEY)?.as_s().ok())
            .filter_map(|k| indexed_id(k))
        {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        let found = self.get_many(user, &ids).await?;
        let photos = ids
            .iter()
            .filter_map(|id| found.get(*id))
            .filter(|p| query.matches(p))
            .cloned()
            .collect();
        let next = out
            .last_evaluated_key()
            .and_then(|k| k.get(SORT_KEY))
            .and_then(|v| v.as_s().ok())
            .map(|k| encode_cursor(k));
        Ok(Page { photos, next })
    }

    /// The user's photos with these ids (at most 100), by id.
    async fn get_many(
        &self,
        user: &str,
        ids: &[&str],
    ) -> Result<HashMap<String, Photo>, TableError> {
        let mut found = HashMap::new();
        let mut keys: Vec<HashMap<String, AttributeValue>> = ids
            .iter()
            .take(100)
            .map(|id| {
                HashMap::from([
                    (PARTITION_KEY.to_owned(), s(user)),
                    (SORT_KEY.to_owned(), s(id)),
                ])
            })
            .collect();
        // DynamoDB may leave keys unprocessed under load: ask again, a few times.
        for _ in 0..4 {
            if keys.is_empty() {
                break;
            }
            let request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .consistent_read(true)
                .build()
                .map_err(|e| self.aws("BatchGetItem", e))?;
            let out = self
                .ddb
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| self.aws("BatchGetItem", e))?;
            let items = out
                .responses
                .as_ref()
                .and_then(|r| r.get(&self.table))
                .map(Vec::as_slice)
                .unwrap_or_default();
            metrics::items_read(items.len());
            found.extend(items.iter().filter_map(photo).map(|p| (p.id.clone(), p)));
            keys = out
                .unprocessed_keys
                .and_then(|mut u| u.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default();
        }
        Ok(found)
    }

    /// Every photo of the user that has a location, up to `limit`.
    pub async fn located(&self, user: &str, limit: usize) -> Result<Vec<Photo>, TableError> {
        let mut found = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .newest_first(user)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.aws("Query", e))?;
            metrics::items_read(out.items().len());
            found.extend(
                out.items()
                    .iter()
                    .filter_map(photo)
                    .filter(|p| p.lat.is_some() && p.lng.is_some()),
            );
            start = out.last_evaluated_key;
            if start.is_none() || found.len() >= limit {
                break;
            }
        }
        found.truncate(limit);
        Ok(found)
    }
}

fn encode_cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

fn decode_cursor(cursor: &str) -> Option<String> {
    if cursor.len() > 200 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photos::tests::sample;

    #[test]
    fn items_round_trip() {
        let mut p = sample();
        p.rev = 3;
        assert_eq!(photo(&item("sub-1", &p)), Some(p));
    }

    #[test]
    fn terms_are_lowercase_words_of_tags_place_and_description() {
        let t = terms(&sample());
        for word in [
            "beach", "summer", "sunset", "at", "the", "bay", "seoul", "kr",
        ] {
            assert!(t.contains(word), "{word} missing from {t:?}");
        }
        assert!(!t.iter().any(|w| w.contains('<') || w.contains(' ')));
    }

    #[test]
    fn terms_are_bounded_and_tags_come_first() {
        let mut p = sample();
        p.tags = vec!["zebra".to_owned()];
        p.description = (0..500)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ");
        p.description.push_str(&"x".repeat(1000));
        let t = terms(&p);
        assert_eq!(t.len(), MAX_TERMS);
        assert!(t.contains("zebra") && t.contains("seoul"));
        assert!(t.iter().all(|w| w.chars().count() <= MAX_TERM_CHARS));
    }

    #[test]
    fn queries_are_words_longest_first_and_match_word_prefixes() {
        let q = SearchQuery::parse("  SUN, bay!! sun ").unwrap();
        assert_eq!(q.words, ["sun", "bay"]);
        assert!(q.matches(&sample()));
        assert!(
            SearchQuery::parse("sunset seoul")
                .unwrap()
                .matches(&sample())
        );
        assert_eq!(SearchQuery::parse("seoul sun").unwrap().words[0], "seoul");
        assert!(
            !SearchQuery::parse("sun mountain")
                .unwrap()
                .matches(&sample())
        );
        // Inside a word is not a match: "unset" is not where a word begins.
        assert!(!SearchQuery::parse("unset").unwrap().matches(&sample()));
        assert!(SearchQuery::parse("<>!").unwrap().is_empty());
        assert!(matches!(
            SearchQuery::parse("a b c d e"),
            Err(TableError::TooManyWords)
        ));
    }

    #[test]
    fn index_keys_name_the_word_and_the_photo() {
        let key = index_key("sub-1", "beach", "01JDX5Y3Q7V8W9X0Y1Z2A3B4C5");
        assert_eq!(key[PARTITION_KEY].as_s().unwrap(), "sub-1#search");
        let sort = key[SORT_KEY].as_s().unwrap();
        assert_eq!(sort, "beach#01JDX5Y3Q7V8W9X0Y1Z2A3B4C5");
        assert_eq!(indexed_id(sort), Some("01JDX5Y3Q7V8W9X0Y1Z2A3B4C5"));
        assert_eq!(indexed_id("beach#../x"), None);
    }

    #[test]
    fn cursors_are_opaque_and_bounded() {
        let id = "01JDX5Y3Q7V8W9X0Y1Z2A3B4C5";
        assert_eq!(decode_cursor(&encode_cursor(id)).as_deref(), Some(id));
        assert_eq!(decode_cursor("not base64!"), None);
        assert_eq!(decode_cursor(&"A".repeat(1000)), None);
    }
}
