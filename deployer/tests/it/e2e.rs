//! End to end against a fresh local cloud (ministack on a free loopback port),
//! running the `deployer` binary exactly as a CI step would: no terminal,
//! `--yes --output json`, exit codes. Every resource the deployer claims to
//! create is checked through its own service's API.

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use deployer::aws::{Aws, Settings};
use deployer::deploy::static_sync::{self, Site};
use deployer::localcloud::{LocalCloud, free_port, http_get, is_healthy};
use deployer::stage::Stage;
use serde_json::Value;

use crate::faulty_proxy::{Faults, FaultyProxy};
use crate::support::{deployer, project_dir};

const REGION: &str = "ap-southeast-1";
const STAGE: &str = "local";

/// A fresh emulator for this test, stopped when it ends (also on panic).
pub(crate) struct Cloud {
    pub(crate) emulator: LocalCloud,
    _data: tempfile::TempDir,
    pub(crate) rt: tokio::runtime::Runtime,
    pub(crate) aws: Aws,
}

impl Cloud {
    pub(crate) fn start() -> Self {
        let data = tempfile::tempdir().unwrap();
        let cloud = LocalCloud::start_fresh(&project_dir(), data.path()).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let aws = rt
            .block_on(Aws::connect(&Settings {
                region: REGION.to_owned(),
                profile: None,
                endpoint: Some(cloud.endpoint()),
            }))
            .unwrap();
        Self {
            emulator: cloud,
            _data: data,
            rt,
            aws,
        }
    }

    /// `deployer <args> --stage local --endpoint-url <cloud> --yes --output json`.
    pub(crate) fn deployer(&self, args: &[&str]) -> assert_cmd::Command {
        deployer_at(&self.emulator.endpoint(), args)
    }

    pub(crate) fn json(&self, args: &[&str]) -> Value {
        let out = self.deployer(args).assert().success();
        let stdout = &out.get_output().stdout;
        serde_json::from_slice(stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
                String::from_utf8_lossy(stdout),
                String::from_utf8_lossy(&out.get_output().stderr)
            )
        })
    }

    fn stacks(&self) -> Vec<String> {
        self.rt.block_on(async {
            self.aws
                .cfn
                .list_stacks()
                .send()
                .await
                .unwrap()
                .stack_summaries()
                .iter()
                .filter(|s| {
                    s.stack_status
                        .as_ref()
                        .is_some_and(|s| s.as_str() != "DELETE_COMPLETE")
                })
                .filter_map(|s| s.stack_name.clone())
                .collect()
        })
    }

    fn buckets(&self) -> Vec<String> {
        self.rt.block_on(async {
            self.aws
                .s3
                .list_buckets()
                .send()
                .await
                .unwrap()
                .buckets()
                .iter()
                .filter_map(|b| b.name.clone())
                .collect()
        })
    }

    /// The physical id of a logical resource of the stage's stack.
    fn physical_id(&self, logical: &str) -> String {
        self.rt.block_on(async {
            self.aws
                .cfn
                .describe_stack_resource()
                .stack_name("cloudalbum-local")
                .logical_resource_id(logical)
                .send()
                .await
                .unwrap()
                .stack_resource_detail()
                .and_then(|d| d.physical_resource_id.clone())
                .unwrap()
        })
    }

    /// What an operator does before `down` of a retained stage.
    fn lift_termination_protection(&self) {
        self.rt
            .block_on(
                self.aws
                    .cfn
                    .update_termination_protection()
                    .stack_name("cloudalbum-local")
                    .enable_termination_protection(false)
                    .send(),
            )
            .unwrap();
    }

    fn table_capacity(&self, table: &str) -> (i64, i64) {
        self.rt.block_on(async {
            let t = self
                .aws
                .ddb
                .describe_table()
                .table_name(table)
                .send()
                .await
                .unwrap();
            let p = t.table().unwrap().provisioned_throughput().unwrap();
            (
                p.read_capacity_units().unwrap(),
                p.write_capacity_units().unwrap(),
            )
        })
    }
}

/// `deployer <args> --stage local --endpoint-url <endpoint> --yes --output json`.
fn deployer_at(endpoint: &str, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = deployer();
    cmd.args(args)
        .args(["--stage", STAGE, "--endpoint-url", endpoint])
        .args(["--yes", "--output", "json"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("CI", "true")
        .timeout(Duration::from_mins(15));
    cmd
}

fn sdk_config(cloud: &Cloud) -> aws_config::SdkConfig {
    cloud.rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(cloud.emulator.endpoint())
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load(),
    )
}

/// A copy of the stage files where `local.yaml` has `from` replaced by `to`.
fn stacks_with(from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for stage in crate::support::stages() {
        let text =
            std::fs::read_to_string(project_dir().join(format!("stacks/{stage}.yaml"))).unwrap();
        let text = if stage == STAGE {
            assert!(text.contains(from), "local.yaml has no `{from}`");
            let text = text.replace(from, to);
            if text.contains("retain_data: true") {
                // A stage with real users ships the release build only.
                text.replace("  build_profile: fast\n", "")
            } else {
                text
            }
        } else {
            text
        };
        std::fs::write(dir.path().join(format!("{stage}.yaml")), text).unwrap();
    }
    dir
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn hex_to_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn stage_lifecycle_against_the_emulator() {
    let cloud = Cloud::start();
    let local = Stage::load(&project_dir(), STAGE).unwrap();

    // An invalid stage file stops before any call: nothing appears in the cloud.
    let bad = stacks_with("read_capacity: 5", "read_capacity: 0");
    cloud
        .deployer(&["up", "--stacks-dir", bad.path().to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("`table.read_capacity`"));
    assert!(cloud.stacks().is_empty(), "{:?}", cloud.stacks());
    assert!(cloud.buckets().is_empty(), "{:?}", cloud.buckets());

    // A stage that was never deployed: `url` and `status` say so, exit 1.
    for command in ["url", "status"] {
        cloud
            .deployer(&[command])
            .assert()
            .code(1)
            .stderr(predicates::str::contains("is not deployed"))
            .stderr(predicates::str::contains("deployer up --stage local"));
    }

    // A plan of a stage never deployed: every resource added, nothing left behind.
    let plan = cloud.json(&["plan"]);
    assert_eq!(plan["change_set_type"], "CREATE");
    let added = plan["changes"].as_array().unwrap();
    assert_eq!(added.len(), 15, "{plan}");
    assert!(added.iter().all(|c| c["action"] == "Add"), "{plan}");
    assert!(cloud.stacks().is_empty(), "{:?}", cloud.stacks());

    // First deploy.
    let first = cloud.json(&["up"]);
    assert_eq!(first["status"], "CREATE_COMPLETE", "{first}");
    assert_eq!(first["up_to_date"], false);
    assert_eq!(first["artifact"]["uploaded"], true);
    assert_eq!(first["static"]["uploaded"], first["static"]["files"]);
    assert!(first["static"]["files"].as_u64().unwrap() >= 3);
    let outputs = &first["outputs"];
    let bucket = outputs["BucketName"].as_str().unwrap().to_owned();
    let table = outputs["TableName"].as_str().unwrap().to_owned();
    let api_url = outputs["ApiUrl"].as_str().unwrap().to_owned();
    assert_eq!(first["url"], api_url.as_str());

    check_resources(&cloud, &local, &first, &bucket, &table);
    check_artifacts_bucket_is_private_and_encrypted(&cloud, &first);
    check_static_and_photo_privacy(&cloud, &bucket, outputs["StaticUrl"].as_str().unwrap());

    // `url` prints the ApiUrl output, and the app answers through API Gateway and Lambda.
    let url = cloud.json(&["url"]);
    assert_eq!(url["url"], api_url.as_str());
    let health = http_get(&format!("{api_url}health")).unwrap();
    assert_eq!(health.status, 200, "{}", health.body_text());
    let body: Value = serde_json::from_slice(&health.body).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["stage"], STAGE);
    let status = cloud.json(&["status"]);
    assert_eq!(status["status"], "CREATE_COMPLETE");
    // The real function's pages link to the versioned files the deploy uploaded.
    let signin = http_get(&format!("{api_url}signin")).unwrap();
    assert_eq!(signin.status, 200, "{}", signin.body_text());
    let site = Site::read(&project_dir().join("static")).unwrap();
    for asset in ["css/site.css", "js/app.js", "img/logo.svg"] {
        let url = format!(
            "{}{}",
            outputs["StaticUrl"].as_str().unwrap(),
            site.manifest.url_path(asset).unwrap()
        );
        assert!(
            signin.body_text().contains(&url),
            "{url} not in the sign-in page"
        );
    }

    // A second `up` with no change: nothing executed, nothing uploaded.
    let again = cloud.json(&["up"]);
    assert_eq!(again["up_to_date"], true, "{again}");
    assert_eq!(again["changes"], Value::Array(Vec::new()));
    assert_eq!(again["artifact"]["uploaded"], false);
    assert_eq!(again["artifact"]["key"], first["artifact"]["key"]);
    assert_eq!(again["static"]["uploaded"], 0);
    assert_eq!(again["timings_ms"]["apply"], 0);

    // `plan` after a change lists exactly that change, and changes nothing.
    let with_rcu_7 = stacks_with("read_capacity: 5", "read_capacity: 7");
    let plan = cloud.json(&["plan", "--stacks-dir", with_rcu_7.path().to_str().unwrap()]);
    assert_eq!(plan["change_set_type"], "UPDATE");
    let direct = plan["changes"].as_array().unwrap();
    assert_eq!(direct.len(), 1, "{plan}");
    assert_eq!(direct[0]["action"], "Modify");
    assert_eq!(direct[0]["logical_id"], "PhotoTable");
    assert_eq!(direct[0]["resource_type"], "AWS::DynamoDB::Table");
    assert_eq!(direct[0]["replacement"], "False");
    // What refers to the table is listed apart, with its cause, never as a direct change.
    for dependent in plan["dependent_changes"].as_array().unwrap() {
        assert!(
            !dependent["caused_by"].as_array().unwrap().is_empty(),
            "{dependent}"
        );
    }
    assert_eq!(cloud.table_capacity(&table), (5, 5));

    // `up` with the change updates the table.
    let updated = cloud.json(&["up", "--stacks-dir", with_rcu_7.path().to_str().unwrap()]);
    assert_eq!(updated["status"], "UPDATE_COMPLETE", "{updated}");
    assert_eq!(cloud.table_capacity(&table), (7, 5));

    check_down_protects_then_deletes(&cloud, &bucket, &table);
}

fn check_resources(cloud: &Cloud, local: &Stage, first: &Value, bucket: &str, table: &str) {
    let config = sdk_config(cloud);
    let cors = cloud
        .rt
        .block_on(cloud.aws.s3.get_bucket_cors().bucket(bucket).send())
        .unwrap();
    let rules = cors.cors_rules();
    assert_eq!(rules.len(), 1);
    let strings = |v: &[String]| v.to_vec();
    let b = &local.config.bucket;
    assert_eq!(
        strings(rules[0].allowed_origins()),
        b.cors_allowed_origins
            .iter()
            .map(|o| o.as_str().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        strings(rules[0].allowed_methods()),
        b.cors_allowed_methods
            .iter()
            .map(|m| m.as_str().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        strings(rules[0].allowed_headers()),
        b.cors_allowed_headers
            .iter()
            .map(|h| h.as_str().to_owned())
            .collect::<Vec<_>>()
    );
    assert_eq!(
        rules[0].max_age_seconds(),
        Some(i32::try_from(b.cors_max_age.get()).unwrap())
    );

    assert_eq!(
        cloud.table_capacity(table),
        (
            i64::from(local.config.table.read_capacity.get()),
            i64::from(local.config.table.write_capacity.get())
        )
    );

    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&config);
    let pool_id = first["outputs"]["UserPoolId"].as_str().unwrap();
    let client_id = first["outputs"]["UserPoolClientId"].as_str().unwrap();
    let pool = cloud
        .rt
        .block_on(cognito.describe_user_pool().user_pool_id(pool_id).send())
        .unwrap();
    assert_eq!(pool.user_pool().unwrap().id(), Some(pool_id));
    let client = cloud
        .rt
        .block_on(
            cognito
                .describe_user_pool_client()
                .user_pool_id(pool_id)
                .client_id(client_id)
                .send(),
        )
        .unwrap();
    assert_eq!(
        client.user_pool_client().unwrap().client_id(),
        Some(client_id)
    );

    let ddb_arn = cloud
        .rt
        .block_on(cloud.aws.ddb.describe_table().table_name(table).send())
        .unwrap()
        .table()
        .unwrap()
        .table_arn()
        .unwrap()
        .to_owned();
    let iam = aws_sdk_iam::Client::new(&config);
    let role = cloud.physical_id("AppRole");
    let policy = cloud
        .rt
        .block_on(
            iam.get_role_policy()
                .role_name(&role)
                .policy_name("cloudalbum-app")
                .send(),
        )
        .unwrap();
    let document = percent_decode(policy.policy_document());
    assert!(document.contains(&ddb_arn), "{document}");
    assert!(
        document.contains(&format!("arn:aws:s3:::{bucket}/photos/*")),
        "{document}"
    );
    assert!(!document.contains("\"*\""), "{document}");

    let lambda = aws_sdk_lambda::Client::new(&config);
    let function = cloud
        .rt
        .block_on(
            lambda
                .get_function()
                .function_name(first["outputs"]["FunctionName"].as_str().unwrap())
                .send(),
        )
        .unwrap();
    let configuration = function.configuration().unwrap();
    assert_eq!(
        configuration.runtime().map(|r| r.as_str().to_owned()),
        Some("provided.al2023".to_owned())
    );
    assert_eq!(configuration.handler(), Some("bootstrap"));
    // The code is the content-addressed zip: Lambda's hash of it is the key's hash.
    let key = first["artifact"]["key"].as_str().unwrap();
    let sha = key
        .strip_prefix("cloudalbum-local/bootstrap/")
        .and_then(|k| k.strip_suffix(".zip"))
        .unwrap();
    assert_eq!(
        configuration.code_sha256(),
        Some(base64(&hex_to_bytes(sha)).as_str())
    );
    let stack = cloud
        .rt
        .block_on(deployer::deploy::stack::describe(
            &cloud.aws,
            "cloudalbum-local",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(stack.parameters["CodeKey"], key);

    let apigateway = aws_sdk_apigateway::Client::new(&config);
    let api = cloud.physical_id("Api");
    let stage = cloud
        .rt
        .block_on(
            apigateway
                .get_stage()
                .rest_api_id(&api)
                .stage_name(STAGE)
                .send(),
        )
        .unwrap();
    assert_eq!(stage.stage_name(), Some(STAGE));
}

fn check_artifacts_bucket_is_private_and_encrypted(cloud: &Cloud, first: &Value) {
    let bucket = first["artifact"]["bucket"].as_str().unwrap();
    assert!(bucket.starts_with("deployer-artifacts-"), "{bucket}");
    let block = cloud
        .rt
        .block_on(cloud.aws.s3.get_public_access_block().bucket(bucket).send())
        .unwrap();
    let block = block.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            block.block_public_acls(),
            block.ignore_public_acls(),
            block.block_public_policy(),
            block.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let encryption = cloud
        .rt
        .block_on(cloud.aws.s3.get_bucket_encryption().bucket(bucket).send())
        .unwrap();
    let rules = encryption
        .server_side_encryption_configuration()
        .unwrap()
        .rules();
    assert_eq!(
        rules[0]
            .apply_server_side_encryption_by_default()
            .map(|d| d.sse_algorithm().as_str().to_owned()),
        Some("AES256".to_owned())
    );
}

fn check_static_and_photo_privacy(cloud: &Cloud, bucket: &str, static_url: &str) {
    use aws_sdk_s3::types::Permission;
    const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
    let site = Site::read(&project_dir().join("static")).unwrap();
    for (file, content_type) in [
        ("css/site.css", "text/css; charset=utf-8"),
        ("js/app.js", "text/javascript; charset=utf-8"),
        ("img/logo.svg", "image/svg+xml"),
        ("vendor/leaflet/leaflet.css", "text/css; charset=utf-8"),
    ] {
        let published = site.manifest.url_path(file).unwrap();
        let response = http_get(&format!("{static_url}{published}")).unwrap();
        assert_eq!(response.status, 200, "{file}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
            "{file}"
        );
        assert_eq!(
            response.header("cache-control"),
            Some(static_sync::IMMUTABLE),
            "{file}"
        );
        let on_disk = std::fs::read(project_dir().join("static").join(file)).unwrap();
        assert_eq!(response.body, on_disk, "{file}");
        let acl = cloud
            .rt
            .block_on(
                cloud
                    .aws
                    .s3
                    .get_object_acl()
                    .bucket(bucket)
                    .key(format!("static/{published}"))
                    .send(),
            )
            .unwrap();
        assert!(
            acl.grants().iter().any(|g| {
                g.grantee().and_then(|g| g.uri()) == Some(ALL_USERS)
                    && g.permission() == Some(&Permission::Read)
            }),
            "static/{published} is not public-read: {:?}",
            acl.grants()
        );
    }
    // A photo is private: no grant to everyone (the emulator serves private
    // objects anonymously, so the ACL is the proof, see `docs/emulator.md`).
    let photo = "photos/test-user/0001.jpg";
    cloud
        .rt
        .block_on(
            cloud
                .aws
                .s3
                .put_object()
                .bucket(bucket)
                .key(photo)
                .body(b"\xff\xd8\xff\xe0 not really a jpeg".to_vec().into())
                .send(),
        )
        .unwrap();
    let acl = cloud
        .rt
        .block_on(
            cloud
                .aws
                .s3
                .get_object_acl()
                .bucket(bucket)
                .key(photo)
                .send(),
        )
        .unwrap();
    assert!(
        !acl.grants()
            .iter()
            .any(|g| g.grantee().and_then(|g| g.uri()) == Some(ALL_USERS)),
        "a photo has a public grant: {:?}",
        acl.grants()
    );
}

fn check_down_protects_then_deletes(cloud: &Cloud, bucket: &str, table: &str) {
    // The bucket holds a photo: without --delete-data nothing at all is deleted.
    cloud
        .deployer(&["down"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("photo object"))
        .stderr(predicates::str::contains("nothing was deleted"))
        .stderr(predicates::str::contains("--delete-data"));
    assert_eq!(cloud.stacks(), vec!["cloudalbum-local".to_owned()]);
    let objects = cloud
        .rt
        .block_on(cloud.aws.s3.list_objects_v2().bucket(bucket).send())
        .unwrap();
    assert!(
        objects
            .contents()
            .iter()
            .any(|o| o.key() == Some("photos/test-user/0001.jpg"))
    );
    assert!(
        objects
            .contents()
            .iter()
            .any(|o| o.key().is_some_and(|k| k.starts_with("static/css/site.")))
    );

    // Off a terminal, deleting needs --yes.
    let mut no_yes = deployer();
    no_yes
        .args(["down", "--delete-data", "--stage", STAGE, "--endpoint-url"])
        .arg(cloud.emulator.endpoint())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("CI", "true")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--yes"));
    assert_eq!(cloud.stacks(), vec!["cloudalbum-local".to_owned()]);

    let down = cloud.json(&["down", "--delete-data"]);
    assert_eq!(down["status"], "DELETE_COMPLETE", "{down}");
    assert!(down["objects_deleted"].as_u64().unwrap() >= 4);

    // Gone, each through its own API.
    let config = sdk_config(cloud);
    assert!(cloud.stacks().is_empty());
    assert!(
        cloud
            .rt
            .block_on(deployer::deploy::stack::describe(
                &cloud.aws,
                "cloudalbum-local"
            ))
            .unwrap()
            .is_none()
    );
    assert!(
        cloud
            .rt
            .block_on(cloud.aws.s3.head_bucket().bucket(bucket).send())
            .is_err()
    );
    assert!(
        cloud
            .rt
            .block_on(cloud.aws.ddb.describe_table().table_name(table).send())
            .is_err()
    );
    let lambda = aws_sdk_lambda::Client::new(&config);
    assert!(
        cloud
            .rt
            .block_on(
                lambda
                    .get_function()
                    .function_name("cloudalbum-local")
                    .send()
            )
            .is_err()
    );
    let cognito = aws_sdk_cognitoidentityprovider::Client::new(&config);
    let pools = cloud
        .rt
        .block_on(cognito.list_user_pools().max_results(60).send())
        .unwrap();
    assert!(pools.user_pools().is_empty(), "{:?}", pools.user_pools());
    let apigateway = aws_sdk_apigateway::Client::new(&config);
    let apis = cloud
        .rt
        .block_on(apigateway.get_rest_apis().send())
        .unwrap();
    assert!(apis.items().is_empty(), "{:?}", apis.items());
    let iam = aws_sdk_iam::Client::new(&config);
    let roles = cloud.rt.block_on(iam.list_roles().send()).unwrap();
    assert!(
        !roles
            .roles()
            .iter()
            .any(|r| r.role_name().starts_with("cloudalbum-local")),
        "{:?}",
        roles.roles()
    );

    // Deleting again is not an error: the stage is simply not there.
    let again = cloud.json(&["down"]);
    assert_eq!(again["status"], "NOT_DEPLOYED");
}

/// `deployer local`: starts the local cloud, deploys, serves the app, and
/// stops cleanly on Ctrl-C; its state survives a restart.
#[test]
fn local_serves_the_app_until_ctrl_c_and_keeps_state() {
    let port = free_port().unwrap();
    let state = tempfile::tempdir().unwrap();
    let (url, bucket) = run_local_until_ready(port, state.path(), |url, report| {
        let health = http_get(&format!("{url}health")).unwrap();
        assert_eq!(health.status, 200);
        report["outputs"]["BucketName"].as_str().unwrap().to_owned()
    });
    assert!(!url.is_empty());
    assert!(!is_healthy(port), "the local cloud still runs after Ctrl-C");

    // Restart on the same state: the stage is still there, up to date.
    let (_, bucket_again) = run_local_until_ready(port, state.path(), |url, report| {
        assert_eq!(report["up_to_date"], true, "{report}");
        assert_eq!(http_get(&format!("{url}health")).unwrap().status, 200);
        report["outputs"]["BucketName"].as_str().unwrap().to_owned()
    });
    assert_eq!(bucket, bucket_again);
    assert!(!is_healthy(port));
}

/// Runs `deployer local --output json` until its report arrives, calls
/// `check`, then sends Ctrl-C (SIGINT) and expects a clean exit.
fn run_local_until_ready<T>(
    port: u16,
    state: &Path,
    check: impl FnOnce(&str, &Value) -> T,
) -> (String, T) {
    use std::io::BufRead;
    let mut child = StdCommand::new(env!("CARGO_BIN_EXE_deployer"))
        .current_dir(project_dir())
        .args([
            "local",
            "--output",
            "json",
            "--port",
            &port.to_string(),
            "--state-dir",
        ])
        .arg(state)
        .env("DEPLOYER_BUILD_PROFILE", "release")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_ENDPOINT_URL")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let report: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("`deployer local` printed no JSON report ({e}): {line}"));
    let url = report["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("http://")
            && url.contains(".execute-api.localhost:")
            && url.ends_with("/local/"),
        "{url}"
    );
    let value = check(&url, &report);
    let interrupted = StdCommand::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(interrupted.success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "`deployer local` did not stop on Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");
    (url, value)
}

/// A first deploy that failed leaves a `ROLLBACK_COMPLETE` stack, which
/// CloudFormation can only delete. `plan` says so; `up` off a terminal needs
/// `--yes` and leaves it alone; `up --yes` deletes it and creates the stage.
#[test]
fn a_failed_first_deploy_is_deleted_and_created_again() {
    let cloud = Cloud::start();
    // The emulator rolls back `ProviderURL` (see `docs/emulator.md`): a
    // stack under the stage's name whose creation fails.
    let failed_id = cloud.rt.block_on(async {
        let id = cloud
            .aws
            .cfn
            .create_stack()
            .stack_name("cloudalbum-local")
            .template_body(
                "Resources:\n  Pool:\n    Type: AWS::Cognito::UserPool\n\
                 Outputs:\n  Issuer:\n    Value: !GetAtt Pool.ProviderURL\n",
            )
            .send()
            .await
            .unwrap()
            .stack_id
            .unwrap();
        let deadline = Instant::now() + Duration::from_mins(1);
        loop {
            let status = cloud
                .aws
                .cfn
                .describe_stacks()
                .stack_name(&id)
                .send()
                .await
                .unwrap()
                .stacks()[0]
                .stack_status
                .clone()
                .unwrap();
            if status.as_str() == "ROLLBACK_COMPLETE" {
                break id;
            }
            assert!(Instant::now() < deadline, "stack stuck in {status:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });

    cloud
        .deployer(&["plan"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("ROLLBACK_COMPLETE"))
        .stderr(predicates::str::contains("deployer up"));

    let mut no_yes = deployer();
    no_yes
        .args(["up", "--stage", STAGE, "--endpoint-url"])
        .arg(cloud.emulator.endpoint())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("CI", "true")
        .timeout(Duration::from_mins(15))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("--yes"));
    assert_eq!(cloud.stacks(), vec!["cloudalbum-local".to_owned()]);

    let up = cloud.json(&["up"]);
    assert_eq!(up["status"], "CREATE_COMPLETE", "{up}");
    let stack_id = cloud.rt.block_on(async {
        cloud
            .aws
            .cfn
            .describe_stacks()
            .stack_name("cloudalbum-local")
            .send()
            .await
            .unwrap()
            .stacks()[0]
            .stack_id
            .clone()
            .unwrap()
    });
    assert_ne!(stack_id, failed_id, "the failed stack was not replaced");
    let table = up["outputs"]["TableName"].as_str().unwrap();
    assert_eq!(cloud.table_capacity(table), (5, 5));
}

#[test]
fn a_retained_stage_protects_its_data_through_each_services_api() {
    let cloud = Cloud::start();
    let retained = stacks_with("retain_data: false", "retain_data: true");
    let dir = retained.path().to_str().unwrap();
    let up = cloud.json(&["up", "--stacks-dir", dir]);
    assert_eq!(up["status"], "CREATE_COMPLETE", "{up}");
    let outputs = &up["outputs"];
    let (bucket, table, pool) = (
        outputs["BucketName"].as_str().unwrap(),
        outputs["TableName"].as_str().unwrap(),
        outputs["UserPoolId"].as_str().unwrap(),
    );
    let sdk = sdk_config(&cloud);
    let api = cloud.physical_id("Api");
    cloud.rt.block_on(async {
        let stack = cloud
            .aws
            .cfn
            .describe_stacks()
            .stack_name("cloudalbum-local")
            .send()
            .await
            .unwrap();
        assert_eq!(
            stack.stacks()[0].enable_termination_protection,
            Some(true),
            "termination protection after the first create"
        );
        let policy = cloud
            .aws
            .cfn
            .get_stack_policy()
            .stack_name("cloudalbum-local")
            .send()
            .await
            .unwrap()
            .stack_policy_body
            .unwrap_or_default();
        assert!(policy.contains("Update:Replace"), "{policy}");
        assert!(policy.contains("LogicalResourceId/UserPool"), "{policy}");
        let versioning = cloud
            .aws
            .s3
            .get_bucket_versioning()
            .bucket(bucket)
            .send()
            .await
            .unwrap();
        assert_eq!(
            versioning.status,
            Some(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
        );
        let described = cloud
            .aws
            .ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .unwrap();
        assert_eq!(
            described.table.unwrap().deletion_protection_enabled,
            Some(true)
        );
        let pool = aws_sdk_cognitoidentityprovider::Client::new(&sdk)
            .describe_user_pool()
            .user_pool_id(pool)
            .send()
            .await
            .unwrap()
            .user_pool
            .unwrap();
        assert_eq!(
            pool.deletion_protection,
            Some(aws_sdk_cognitoidentityprovider::types::DeletionProtectionType::Active)
        );
        // The API stage is throttled and writes access logs, as API Gateway says.
        let apigateway = aws_sdk_apigateway::Client::new(&sdk);
        let stage = apigateway
            .get_stage()
            .rest_api_id(&api)
            .stage_name(STAGE)
            .send()
            .await
            .unwrap();
        let all = stage
            .method_settings()
            .and_then(|m| m.get("*/*"))
            .unwrap_or_else(|| panic!("no */* method settings: {stage:?}"));
        assert_eq!(
            (all.throttling_rate_limit, all.throttling_burst_limit),
            (
                f64::from(deployer::stage::defaults::API_RATE_LIMIT),
                i32::try_from(deployer::stage::defaults::API_BURST_LIMIT).unwrap()
            )
        );
        // The emulator drops a REST API stage's `AccessLogSetting` (its
        // `GetStage` never returns one); the template test covers it.
        let account = apigateway.get_account().send().await.unwrap();
        assert!(account.cloudwatch_role_arn().is_some(), "{account:?}");
    });
    // `down` leaves a termination-protected stage alone.
    cloud
        .deployer(&["down", "--stacks-dir", dir])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("termination protection"));
    assert_eq!(cloud.stacks(), vec!["cloudalbum-local".to_owned()]);
}

/// The journey: up, sign up, upload a photo, down, up: the same user
/// signs in and sees the photo. The second `up` finds no stack, finds the
/// survivors `down` recorded, and imports them before the normal update.
#[test]
fn a_retained_stage_comes_back_with_its_users_and_photos() {
    const EMAIL: &str = "ann.readopt@example.com";
    const PASSWORD: &str = "Passw0rd!x";
    let cloud = Cloud::start();
    let retained = stacks_with("retain_data: false", "retain_data: true");
    let dir = retained.path().to_str().unwrap();
    let first = cloud.json(&["up", "--stacks-dir", dir]);
    assert_eq!(first["status"], "CREATE_COMPLETE", "{first}");
    assert!(first.get("readopted").is_none(), "{first}");
    let survivors: Vec<(&str, String)> = [
        ("PhotoTable", "TableName"),
        ("PhotoBucket", "BucketName"),
        ("UserPool", "UserPoolId"),
    ]
    .into_iter()
    .map(|(id, output)| (id, first["outputs"][output].as_str().unwrap().to_owned()))
    .collect();

    // A user signs up and uploads a photo through the deployed API.
    let jpeg = std::fs::read(project_dir().join("tests/browser/fixtures/seoul.jpg")).unwrap();
    let mut ann = crate::web::WebUser::new(first["url"].as_str().unwrap());
    ann.sign_up(EMAIL, "Ann", PASSWORD);
    ann.sign_in(EMAIL, PASSWORD);
    let photo = ann.upload_jpeg(&jpeg, "Before the teardown");
    assert!(
        ann.get("/")
            .body_text()
            .contains(&format!("/photos/{photo}"))
    );

    // `down`: termination protection lifted first, as the operator would.
    cloud.lift_termination_protection();
    let down = cloud.json(&["down", "--stacks-dir", dir]);
    assert_eq!(down["status"], "DELETE_COMPLETE", "{down}");
    // The data survives, and so does the role the region's API Gateway
    // settings name for access logs (not data: not re-adopted).
    let mut kept: Vec<String> = down["retained"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["logical_id"] != "ApiGatewayLogsRole")
        .map(|r| r["physical_id"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        down["retained"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["logical_id"] == "ApiGatewayLogsRole"),
        "{down}"
    );
    kept.sort();
    let mut expected: Vec<String> = survivors.iter().map(|(_, p)| p.clone()).collect();
    expected.sort();
    assert_eq!(kept, expected, "{down}");
    assert!(cloud.stacks().is_empty());

    // `plan` names what `up` would import, and changes nothing.
    let plan = cloud.json(&["plan", "--stacks-dir", dir]);
    assert_eq!(plan["change_set_type"], "CREATE", "{plan}");
    for (logical, physical) in &survivors {
        let import = plan["would_import"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["logical_id"] == *logical)
            .unwrap_or_else(|| panic!("plan would not import {logical}: {plan}"));
        assert_eq!(import["physical_id"], physical.as_str());
    }
    assert!(cloud.stacks().is_empty(), "{:?}", cloud.stacks());

    // Off a terminal, re-adopting needs --yes: refused, nothing created.
    let mut no_yes = deployer();
    no_yes
        .args([
            "up",
            "--stacks-dir",
            dir,
            "--stage",
            STAGE,
            "--endpoint-url",
        ])
        .arg(cloud.emulator.endpoint())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env("CI", "true")
        .assert()
        .code(2)
        .stderr(predicates::str::contains("re-adopting the retained data"))
        .stderr(predicates::str::contains("--yes"));
    assert!(cloud.stacks().is_empty(), "{:?}", cloud.stacks());

    // `up --yes`: the survivors are imported, then everything else added.
    let again = cloud.json(&["up", "--stacks-dir", dir]);
    assert_eq!(again["status"], "UPDATE_COMPLETE", "{again}");
    for (logical, physical) in &survivors {
        let readopted = again["readopted"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["logical_id"] == *logical)
            .unwrap_or_else(|| panic!("{logical} was not re-adopted: {again}"));
        assert_eq!(readopted["physical_id"], physical.as_str());
        // The stack holds the very resource, not a new one of its kind.
        assert_eq!(&cloud.physical_id(logical), physical, "{logical}");
    }
    assert_eq!(again["outputs"]["TableName"], survivors[0].1.as_str());
    assert_eq!(again["outputs"]["BucketName"], survivors[1].1.as_str());
    assert_eq!(again["outputs"]["UserPoolId"], survivors[2].1.as_str());
    let stack = cloud
        .rt
        .block_on(deployer::deploy::stack::describe(
            &cloud.aws,
            "cloudalbum-local",
        ))
        .unwrap()
        .unwrap();
    assert!(
        stack.termination_protection,
        "protected again after the import"
    );

    // The same user signs in (a new app client, the same pool) and sees the
    // photo; its original is fetchable, byte for byte.
    let mut back = crate::web::WebUser::new(again["url"].as_str().unwrap());
    back.sign_in(EMAIL, PASSWORD);
    let album = back.get("/").body_text();
    assert!(album.contains(&format!("/photos/{photo}")), "{album}");
    assert!(album.contains("Before the teardown"), "{album}");
    let original = http_get(&back.original_url(&photo)).unwrap();
    assert_eq!(original.status, 200);
    assert_eq!(original.body, jpeg, "the original came back changed");

    // The record served its purpose: a second `up` is an ordinary update.
    let third = cloud.json(&["up", "--stacks-dir", dir]);
    assert_eq!(third["up_to_date"], true, "{third}");
    assert!(third.get("readopted").is_none(), "{third}");
}

#[test]
fn replacing_data_is_refused_with_exit_4_unless_allowed() {
    let cloud = Cloud::start();
    let first = cloud.json(&["up"]);
    let bucket = first["outputs"]["BucketName"].as_str().unwrap().to_owned();
    let stack_before = cloud.rt.block_on(deployer::deploy::stack::describe(
        &cloud.aws,
        "cloudalbum-local",
    ));
    let stack_before = stack_before.unwrap().unwrap();

    // A new bucket name replaces the bucket: `plan` marks it, `up` refuses it.
    let renamed = stacks_with("bucket:\n", "bucket:\n  name: renamed-photo-bucket\n");
    let dir = renamed.path().to_str().unwrap();
    let plan = cloud.json(&["plan", "--stacks-dir", dir]);
    let risks = plan["data_at_risk"].as_array().unwrap();
    assert_eq!(risks.len(), 1, "{plan}");
    assert_eq!(risks[0]["logical_id"], "PhotoBucket");
    cloud
        .deployer(&["up", "--stacks-dir", dir])
        .assert()
        .code(4)
        .stderr(predicates::str::contains(
            "refused: the change would replace or delete data",
        ))
        .stderr(predicates::str::contains("PhotoBucket (AWS::S3::Bucket)"))
        .stderr(predicates::str::contains("--allow-replace PhotoBucket"));
    // Nothing changed: same stack state, the bucket is there, no new one.
    let stack_after = cloud
        .rt
        .block_on(deployer::deploy::stack::describe(
            &cloud.aws,
            "cloudalbum-local",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(stack_after.status, stack_before.status);
    assert_eq!(stack_after.last_updated, stack_before.last_updated);
    let buckets = cloud.buckets();
    assert!(buckets.contains(&bucket), "{buckets:?}");
    assert!(
        !buckets.iter().any(|b| b == "renamed-photo-bucket"),
        "{buckets:?}"
    );

    // Allowing another resource is not enough; naming the bucket is.
    cloud
        .deployer(&["up", "--stacks-dir", dir, "--allow-replace", "PhotoTable"])
        .assert()
        .code(4);
    let replaced = cloud.json(&["up", "--stacks-dir", dir, "--allow-replace", "PhotoBucket"]);
    assert_eq!(replaced["status"], "UPDATE_COMPLETE", "{replaced}");
    assert_eq!(replaced["outputs"]["BucketName"], "renamed-photo-bucket");
}

/// A request: method, URI and its `x-amz-expected-bucket-owner`.
type Recorded = (String, String, Option<String>);

/// Records each request the client sends.
#[derive(Debug, Clone, Default)]
struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<Recorded>>>);

impl aws_sdk_s3::config::Intercept for Recorder {
    fn name(&self) -> &'static str {
        "Recorder"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_s3::config::RuntimeComponents,
        _: &mut aws_sdk_s3::config::ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let request = context.request();
        self.0.lock().unwrap().push((
            request.method().to_owned(),
            request.uri().to_owned(),
            request
                .headers()
                .get("x-amz-expected-bucket-owner")
                .map(str::to_owned),
        ));
        Ok(())
    }
}

/// AWS does not show it on the emulator (which ignores bucket ownership), so
/// the requests are checked: every call on the predictable artifacts bucket
/// names the account that must own it.
#[test]
fn every_call_on_the_artifacts_bucket_names_its_expected_owner() {
    use deployer::deploy::artifacts;
    let cloud = Cloud::start();
    let account = cloud.rt.block_on(cloud.aws.account_id()).unwrap();
    let recorder = Recorder::default();
    let sdk = sdk_config(&cloud);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .interceptor(recorder.clone())
            .build(),
    );
    let aws = Aws {
        s3,
        ..cloud.aws.clone()
    };
    let bucket = cloud
        .rt
        .block_on(artifacts::ensure_bucket(
            &aws,
            &account,
            &artifacts::bucket_name(&account, &aws.region),
        ))
        .unwrap();
    for expected in [true, false] {
        let uploaded = cloud
            .rt
            .block_on(artifacts::upload_if_missing(
                &aws,
                &bucket,
                &account,
                "bootstrap/test.zip",
                b"zip",
            ))
            .unwrap();
        assert_eq!(uploaded, expected);
    }
    // Again, now that it exists.
    cloud
        .rt
        .block_on(artifacts::ensure_bucket(&aws, &account, &bucket))
        .unwrap();
    let requests = recorder.0.lock().unwrap().clone();
    assert!(requests.len() >= 8, "{requests:?}");
    for (method, uri, owner) in &requests {
        assert!(uri.contains(&bucket), "{method} {uri}");
        let is_create = method == "PUT" && uri.trim_end_matches('/').ends_with(&bucket);
        if is_create {
            continue; // CreateBucket has no owner to expect
        }
        assert_eq!(owner.as_deref(), Some(account.as_str()), "{method} {uri}");
    }
    // The bucket is TLS-only.
    let policy = cloud.rt.block_on(async {
        cloud
            .aws
            .s3
            .get_bucket_policy()
            .bucket(&bucket)
            .send()
            .await
            .unwrap()
            .policy
            .unwrap()
    });
    assert!(policy.contains("aws:SecureTransport"), "{policy}");
}

/// A stack keeps its newest ten code artifacts; older ones are tagged for the
/// bucket's lifecycle rule to expire (the emulator runs no lifecycle, so the
/// rule and the tags are checked). Redeploying an old artifact (a rollback)
/// makes it the newest again and clears its tag.
#[test]
fn old_code_artifacts_are_retired_and_the_newest_ten_kept() {
    use deployer::deploy::artifacts::{self, KEEP_ARTIFACTS, RETIRED_TAG};
    let cloud = Cloud::start();
    let account = cloud.rt.block_on(cloud.aws.account_id()).unwrap();
    let bucket = "team-artifacts-retire-test";
    cloud
        .rt
        .block_on(artifacts::ensure_bucket(&cloud.aws, &account, bucket))
        .unwrap();
    let stack = "retire-test";
    let keys: Vec<String> = (0..13)
        .map(|i| format!("{stack}/bootstrap/{i:02}.zip"))
        .collect();
    let tags = |key: &str| {
        cloud.rt.block_on(async {
            cloud
                .aws
                .s3
                .get_object_tagging()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .unwrap()
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect::<Vec<_>>()
        })
    };
    let retired_tag = vec![(RETIRED_TAG.0.to_owned(), RETIRED_TAG.1.to_owned())];
    for key in &keys {
        cloud
            .rt
            .block_on(artifacts::upload_if_missing(
                &cloud.aws, bucket, &account, key, b"zip",
            ))
            .unwrap();
        // Distinct write times (S3 keeps seconds).
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    // Another stack's artifacts are never touched.
    let other = "other-stack/bootstrap/00.zip";
    cloud
        .rt
        .block_on(artifacts::upload_if_missing(
            &cloud.aws, bucket, &account, other, b"zip",
        ))
        .unwrap();
    let newest = keys.last().unwrap();
    let retired = cloud
        .rt
        .block_on(artifacts::retire_old(
            &cloud.aws,
            bucket,
            &account,
            stack,
            newest,
            &[],
        ))
        .unwrap();
    assert_eq!(retired.len(), keys.len() - KEEP_ARTIFACTS, "{retired:?}");
    for key in &keys[..3] {
        assert!(retired.contains(key), "{key}");
        assert_eq!(tags(key), retired_tag, "{key}");
    }
    for key in &keys[3..] {
        assert!(tags(key).is_empty(), "{key}");
    }
    assert!(tags(other).is_empty());
    // A rollback to the oldest: it is kept and untagged, the next oldest goes.
    let retired = cloud
        .rt
        .block_on(artifacts::retire_old(
            &cloud.aws,
            bucket,
            &account,
            stack,
            &keys[0],
            &[],
        ))
        .unwrap();
    assert!(!retired.contains(&keys[0]), "{retired:?}");
    assert!(tags(&keys[0]).is_empty());
    assert!(retired.contains(&keys[3]), "{retired:?}");
    // The lifecycle rule that expires them is on the bucket.
    let rules = cloud.rt.block_on(async {
        cloud
            .aws
            .s3
            .get_bucket_lifecycle_configuration()
            .bucket(bucket)
            .send()
            .await
            .unwrap()
    });
    let expires_retired = rules.rules().iter().any(|r| {
        r.filter()
            .and_then(|f| f.tag())
            .is_some_and(|t| (t.key(), t.value()) == RETIRED_TAG)
            && r.expiration()
                .and_then(aws_sdk_s3::types::LifecycleExpiration::days)
                .is_some()
    });
    assert!(expires_retired, "{rules:?}");
}

#[test]
fn a_stage_of_another_account_is_refused_before_anything_changes() {
    let cloud = Cloud::start();
    let account = cloud.rt.block_on(cloud.aws.account_id()).unwrap();
    let other = if account == "111111111111" {
        "222222222222"
    } else {
        "111111111111"
    };
    let stacks = stacks_with(
        "app: cloudalbum\n",
        &format!("app: cloudalbum\naccount_id: \"{other}\"\n"),
    );
    for command in ["up", "plan", "down", "status"] {
        cloud
            .deployer(&[command, "--stacks-dir", stacks.path().to_str().unwrap()])
            .assert()
            .code(3)
            .stderr(predicates::str::contains(format!(
                "belong to account {account}"
            )))
            .stderr(predicates::str::contains(format!(
                "lives in account {other}"
            )))
            .stderr(predicates::str::contains("--profile"));
    }
    assert!(cloud.stacks().is_empty(), "{:?}", cloud.stacks());
    assert!(cloud.buckets().is_empty(), "{:?}", cloud.buckets());
    // The right account goes ahead.
    let right = stacks_with(
        "app: cloudalbum\n",
        &format!("app: cloudalbum\naccount_id: \"{account}\"\n"),
    );
    cloud
        .deployer(&["down", "--stacks-dir", right.path().to_str().unwrap()])
        .assert()
        .success();
}

#[test]
fn missing_credentials_exit_3_with_the_fix() {
    let home = tempfile::tempdir().unwrap();
    deployer()
        .args(["url", "--stage", "dev"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", home.path().join("none"))
        .env("AWS_SHARED_CREDENTIALS_FILE", home.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .assert()
        .code(3)
        .stderr(predicates::str::contains("AWS_ACCESS_KEY_ID"))
        .stderr(predicates::str::contains("--profile"))
        .stderr(predicates::str::contains("panicked").not())
        .stderr(predicates::str::contains("backtrace").not());
}

#[test]
fn the_bootstrap_needs_no_newer_glibc_than_lambda_has() {
    // Built by the lifecycle tests (or here, if this runs first).
    let path = deployer::deploy::artifacts::build_bootstrap(
        &project_dir(),
        deployer::stage::Architecture::X86_64,
        deployer::stage::BuildProfile::Release,
        true,
    )
    .unwrap();
    let output = StdCommand::new("objdump")
        .arg("-T")
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let newest = text
        .split("GLIBC_")
        .skip(1)
        .filter_map(|rest| {
            let version: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .max()
        .unwrap();
    assert!(
        newest <= (2, 34),
        "bootstrap needs GLIBC_{}.{}",
        newest.0,
        newest.1
    );
    assert_eq!(
        deployer::deploy::artifacts::newest_glibc(&std::fs::read(&path).unwrap()),
        Some(newest)
    );
}

use predicates::prelude::PredicateBooleanExt;

/// The files under `dir`, dot-files skipped (as the sync sees them).
/// Static files go up under versioned names with an immutable
/// `Cache-Control`; a deploy that changes `js/app.js` gives the function the
/// new name and keeps the old file for pages already open; only the deploy
/// after that removes it. Stand-in code: the function is not invoked.
#[test]
fn static_files_are_versioned_and_outlive_the_deploy_that_replaces_them() {
    let cloud = Cloud::start();
    let copy = copy_of_static();
    let deploy = || deploy_stand_in(&cloud, copy.path());
    let (first, v1) = deploy();
    let bucket = bucket_name(&cloud);
    let head = |key: &str| {
        cloud
            .rt
            .block_on(cloud.aws.s3.head_object().bucket(&bucket).key(key).send())
            .ok()
    };
    let app_js = |manifest: &contract::assets::Manifest| {
        format!("static/{}", manifest.url_path("js/app.js").unwrap())
    };

    assert_eq!(first.static_files.uploaded, first.static_files.files);
    assert!(app_js(&v1).starts_with("static/js/app.") && app_js(&v1) != "static/js/app.js");
    let site = Site::read(copy.path()).unwrap();
    for (path, key) in site.keys() {
        let object = head(key).unwrap_or_else(|| panic!("{key} is not in the bucket"));
        assert_eq!(
            object.cache_control(),
            Some(static_sync::IMMUTABLE),
            "{key}"
        );
        assert_eq!(
            object.content_type(),
            Some(static_sync::content_type(path)),
            "{key}"
        );
    }
    // Leaflet keeps its own file names in a versioned folder (leaflet.css
    // finds images/ next to it).
    let leaflet = v1.url_path("vendor/leaflet/leaflet.css").unwrap();
    assert!(leaflet.starts_with("vendor/leaflet.") && leaflet.ends_with("/leaflet.css"));
    let marker = v1
        .url_path("vendor/leaflet/images/marker-icon.png")
        .unwrap();
    assert!(head(&format!("static/{marker}")).is_some());
    // Served over HTTP with the same header.
    let static_url = first.outputs[contract::outputs::STATIC_URL].clone();
    let served = http_get(&format!(
        "{static_url}{}",
        v1.url_path("js/app.js").unwrap()
    ))
    .unwrap();
    assert_eq!(served.status, 200);
    assert_eq!(served.header("cache-control"), Some(static_sync::IMMUTABLE));

    // js/app.js changes: one file up, the function names it, the old one stays.
    std::fs::write(copy.path().join("js/app.js"), "// second\n").unwrap();
    let (second, v2) = deploy();
    assert_eq!(
        (second.static_files.uploaded, second.static_files.deleted),
        (1, 0),
        "{:?}",
        second.static_files
    );
    assert_ne!(app_js(&v2), app_js(&v1));
    assert_eq!(v2.url_path("css/site.css"), v1.url_path("css/site.css"));
    assert_eq!(
        head(&app_js(&v2)).unwrap().cache_control(),
        Some(static_sync::IMMUTABLE)
    );
    assert!(head(&app_js(&v1)).is_some(), "the replaced app.js is gone");

    // The deploy after that keeps what the first one linked to (a rollback
    // target of the history) and removes what no deployment names.
    let stray = "static/js/stray.0123abcd.js";
    cloud
        .rt
        .block_on(
            cloud
                .aws
                .s3
                .put_object()
                .bucket(&bucket)
                .key(stray)
                .body(b"// no deployment names me\n".to_vec().into())
                .send(),
        )
        .unwrap();
    std::fs::write(copy.path().join("js/app.js"), "// third\n").unwrap();
    let (third, v3) = deploy();
    assert_eq!(third.static_files.deleted, 1, "{:?}", third.static_files);
    assert!(
        head(stray).is_none(),
        "a file no deployment names is still there"
    );
    assert!(
        head(&app_js(&v1)).is_some(),
        "app.js of two deploys ago (a rollback target) is gone"
    );
    assert!(head(&app_js(&v2)).is_some());
    assert!(head(&app_js(&v3)).is_some());
    assert!(head(&format!("static/{marker}")).is_some());
}

/// A copy of the project's `static/` (with `vendor/`), to change.
pub(crate) fn copy_of_static() -> tempfile::TempDir {
    let real = project_dir().join("static");
    let copy = tempfile::tempdir().unwrap();
    for file in walk(&real) {
        let to = copy.path().join(file.strip_prefix(&real).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&file, &to).unwrap();
    }
    copy
}

/// Deploys the `local` stage with stand-in code and the files of
/// `static_dir`: the report and the manifest the function was given.
fn deploy_stand_in(
    cloud: &Cloud,
    static_dir: &Path,
) -> (
    deployer::deploy::report::UpReport,
    contract::assets::Manifest,
) {
    use deployer::deploy::session::{Session, SessionOptions};
    use deployer::deploy::{function, pipeline, prepare};
    let options = SessionOptions {
        region: Some(REGION.to_owned()),
        profile: None,
        endpoint_url: Some(cloud.emulator.endpoint()),
        artifacts_bucket: None,
        assume_yes: true,
        allow_replace: Vec::new(),
    };
    cloud.rt.block_on(async {
        let stage = Stage::load(&project_dir(), STAGE).unwrap();
        let session = Session::open(stage, &options, deployer::output::Printer::silent())
            .await
            .unwrap();
        let prepared =
            prepare::prepare_with_code(&session, b"#!/bin/sh\nexit 1\n", static_dir).unwrap();
        let report = pipeline::deploy(&session, &prepared).await.unwrap();
        let env = function::environment(&session).await.unwrap();
        let manifest =
            contract::assets::Manifest::parse(&env[contract::env::STATIC_ASSETS]).unwrap();
        assert_eq!(manifest, prepared.site.manifest);
        (report, manifest)
    })
}

fn bucket_name(cloud: &Cloud) -> String {
    let stack = cloud
        .rt
        .block_on(deployer::deploy::stack::describe(
            &cloud.aws,
            "cloudalbum-local",
        ))
        .unwrap()
        .unwrap();
    stack.outputs[contract::outputs::BUCKET_NAME].clone()
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `up` through the proxy: its JSON report, and how long it took.
fn up_through(proxy: &FaultyProxy) -> (Value, Duration) {
    let started = Instant::now();
    let out = deployer_at(&proxy.endpoint(), &["up"]).assert().success();
    let took = started.elapsed();
    let output = out.get_output();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (report, took)
}

/// Throttling, 5xx answers and reset connections happen on AWS: `up` through
/// a proxy that fails every third request (a 503 with no body, a 500 with an
/// HTML body, a reset, in turn) still deploys the whole stage, because every
/// call retries. Against a baseline through the same proxy without faults,
/// the test prints what the failures cost.
#[test]
fn up_survives_a_third_of_the_requests_failing() {
    let (baseline_requests, baseline) = {
        let cloud = Cloud::start();
        let proxy = FaultyProxy::start(&cloud.rt, &cloud.emulator.endpoint(), Faults::None);
        let (report, took) = up_through(&proxy);
        assert_eq!(report["status"], "CREATE_COMPLETE", "{report}");
        assert_eq!(proxy.failed(), 0);
        (proxy.requests(), took)
    };

    let cloud = Cloud::start();
    let proxy = FaultyProxy::start(&cloud.rt, &cloud.emulator.endpoint(), Faults::EveryNth(3));
    let (report, took) = up_through(&proxy);
    assert_eq!(report["status"], "CREATE_COMPLETE", "{report}");
    let (requests, failed) = (proxy.requests(), proxy.failed());
    assert_eq!(failed, requests / 3, "{}", proxy.failures());
    eprintln!(
        "measured: the proxy failed {failed} of {requests} requests ({}); `up` took {:.1} s against {:.1} s without faults ({baseline_requests} requests), {:+.1} s",
        proxy.failures(),
        took.as_secs_f64(),
        baseline.as_secs_f64(),
        took.as_secs_f64() - baseline.as_secs_f64()
    );
    assert!(
        failed >= 10,
        "too few requests to show anything: {requests}"
    );

    // The stack and what `up` uploaded are really there, asked of the
    // emulator directly.
    assert_eq!(cloud.stacks(), vec!["cloudalbum-local".to_owned()]);
    let stack = cloud
        .rt
        .block_on(deployer::deploy::stack::describe(
            &cloud.aws,
            "cloudalbum-local",
        ))
        .unwrap()
        .unwrap();
    assert_eq!(stack.status.as_str(), "CREATE_COMPLETE");
    assert_eq!(stack.parameters["CodeKey"], report["artifact"]["key"]);
    let bucket = report["outputs"]["BucketName"].as_str().unwrap();
    let objects = cloud
        .rt
        .block_on(
            cloud
                .aws
                .s3
                .list_objects_v2()
                .bucket(bucket)
                .prefix("static/")
                .send(),
        )
        .unwrap();
    assert_eq!(
        objects.contents().len(),
        walk(&project_dir().join("static")).len()
    );
}

/// When AWS keeps failing, `up` gives up after the retries with one short
/// line that names the call, the status, that it was transient and that a
/// re-run resumes: never the SDK's debug dump. Nothing behind the proxy is
/// ever reached, so no emulator is needed.
#[test]
fn up_that_keeps_failing_says_so_in_one_line_and_exits_5() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Every request is failed before it would be forwarded to this port.
    let proxy = FaultyProxy::start(&rt, "http://127.0.0.1:9", Faults::All);
    let out = deployer_at(&proxy.endpoint(), &["up"])
        .assert()
        .code(i32::from(deployer::exit::TRANSIENT));
    let output = out.get_output();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr
        .lines()
        .find(|line| line.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in:\n{stderr}"));
    eprintln!("{error}");
    assert!(error.chars().count() <= 300, "{error}");
    for absent in [
        "ServiceError",
        "Unhandled",
        "XmlDecodeError",
        "{",
        "source:",
    ] {
        assert!(!error.contains(absent), "{error}");
    }
    for present in [
        "failed after 10 attempts",
        "(transient)",
        "re-run the same command to resume",
    ] {
        assert!(error.contains(present), "{error}");
    }
    // Which call failed first, and how, depends on the fault it met last.
    let named = ["`sts:", "`cloudformation:", "`s3:"]
        .iter()
        .any(|s| error.contains(s));
    assert!(named, "{error}");
    let how = ["HTTP 503", "HTTP 500", "connection reset"]
        .iter()
        .any(|s| error.contains(s));
    assert!(how, "{error}");
    assert_eq!(
        proxy.requests(),
        u64::from(deployer::aws::MAX_ATTEMPTS),
        "one call, every attempt"
    );
    // The JSON report carries the same line and the exit code.
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["error"]["exit_code"], 5);
    assert_eq!(
        format!("error: {}", report["error"]["message"].as_str().unwrap()),
        error
    );
}
