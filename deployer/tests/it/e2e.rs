//! End to end against a fresh local cloud (ministack on a free loopback port),
//! running the `deployer` binary exactly as a CI step would: no terminal,
//! `--yes --output json`, exit codes. Every resource the deployer claims to
//! create is checked through its own service's API.

use std::path::Path;
use std::process::{Command as StdCommand, Stdio};
use std::time::{Duration, Instant};

use deployer::aws::{Aws, Settings};
use deployer::localcloud::{LocalCloud, free_port, http_get, is_healthy};
use deployer::stage::Stage;
use serde_json::Value;

use crate::support::{deployer, project_dir};

const REGION: &str = "ap-southeast-1";
const STAGE: &str = "local";

/// A fresh emulator for this test, stopped when it ends (also on panic).
struct Cloud {
    emulator: LocalCloud,
    _data: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    aws: Aws,
}

impl Cloud {
    fn start() -> Self {
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
    fn deployer(&self, args: &[&str]) -> assert_cmd::Command {
        let mut cmd = deployer();
        cmd.args(args)
            .args(["--stage", STAGE, "--endpoint-url"])
            .arg(self.emulator.endpoint())
            .args(["--yes", "--output", "json"])
            .env_remove("AWS_ACCESS_KEY_ID")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("CI", "true")
            .timeout(Duration::from_mins(15));
        cmd
    }

    fn json(&self, args: &[&str]) -> Value {
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
            text.replace(from, to)
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

    check_static_sync_only_sends_what_changed(&cloud, &bucket);
    check_down_protects_then_deletes(&cloud, &bucket, &table);
}

fn check_static_sync_only_sends_what_changed(cloud: &Cloud, bucket: &str) {
    let dir = tempfile::tempdir().unwrap();
    let real = project_dir().join("static");
    std::fs::create_dir_all(dir.path().join("css")).unwrap();
    // Unchanged, changed, new; `img/logo.svg` is gone locally.
    std::fs::copy(real.join("css/site.css"), dir.path().join("css/site.css")).unwrap();
    std::fs::create_dir_all(dir.path().join("js")).unwrap();
    std::fs::write(dir.path().join("js/app.js"), "// changed\n").unwrap();
    std::fs::write(dir.path().join("robots.txt"), "User-agent: *\n").unwrap();
    let real_files = walk(&real).len();
    let report = cloud
        .rt
        .block_on(deployer::deploy::static_sync::sync(
            &cloud.aws,
            bucket,
            dir.path(),
        ))
        .unwrap();
    assert_eq!(
        (
            report.files,
            report.uploaded,
            report.skipped,
            report.deleted
        ),
        (3, 2, 1, real_files - 2),
        "{report:?}"
    );
    let keys: Vec<String> = cloud
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
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key.clone())
        .collect();
    assert_eq!(
        keys,
        [
            "static/css/site.css",
            "static/js/app.js",
            "static/robots.txt"
        ]
    );
    // Back to the project's files.
    let restored = cloud
        .rt
        .block_on(deployer::deploy::static_sync::sync(
            &cloud.aws, bucket, &real,
        ))
        .unwrap();
    assert_eq!(
        (restored.uploaded, restored.deleted),
        (real_files - 1, 1),
        "{restored:?}"
    );
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
        .strip_prefix("bootstrap/")
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
    for (file, content_type) in [
        ("css/site.css", "text/css; charset=utf-8"),
        ("js/app.js", "text/javascript; charset=utf-8"),
        ("img/logo.svg", "image/svg+xml"),
    ] {
        let response = http_get(&format!("{static_url}{file}")).unwrap();
        assert_eq!(response.status, 200, "{file}");
        assert_eq!(
            response.header("content-type"),
            Some(content_type),
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
                    .key(format!("static/{file}"))
                    .send(),
            )
            .unwrap();
        assert!(
            acl.grants().iter().any(|g| {
                g.grantee().and_then(|g| g.uri()) == Some(ALL_USERS)
                    && g.permission() == Some(&Permission::Read)
            }),
            "static/{file} is not public-read: {:?}",
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
            .any(|o| o.key() == Some("static/css/site.css"))
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
    });
    // `down` leaves a termination-protected stage alone.
    cloud
        .deployer(&["down", "--stacks-dir", dir])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("termination protection"));
    assert_eq!(cloud.stacks(), vec!["cloudalbum-local".to_owned()]);
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
        .block_on(artifacts::ensure_bucket(&aws, &account))
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
        .block_on(artifacts::ensure_bucket(&aws, &account))
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

/// A copy of this checkout as another clone would hold it: the files git
/// tracks, and `static/vendor/` (copied in from npm, not tracked).
fn copy_checkout(to: &Path) {
    let root = project_dir();
    let listed = StdCommand::new("git")
        .args(["ls-files", "-z"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(listed.status.success(), "git ls-files failed");
    let mut files: Vec<std::path::PathBuf> = listed
        .stdout
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| root.join(std::str::from_utf8(name).unwrap()))
        .filter(|path| path.is_file())
        .collect();
    files.extend(walk(&root.join("static/vendor")));
    for from in files {
        let to = to.join(from.strip_prefix(&root).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
    }
}

#[test]
fn each_checkout_deploys_its_own_code_from_a_shared_target_directory() {
    let cloud = Cloud::start();
    // The target directory this test's binaries were built in: its release
    // dependencies are already built, and both copies share it.
    let deployer_exe = Path::new(env!("CARGO_BIN_EXE_deployer"));
    let target_dir = deployer_exe.parent().unwrap().parent().unwrap();
    let copies = tempfile::tempdir().unwrap();
    let (a, b) = (copies.path().join("a"), copies.path().join("b"));
    copy_checkout(&a);
    copy_checkout(&b);
    // Checkout b's edit is older than checkout a's build: cargo's times alone
    // would take a's units as b's.
    let layout = b.join("templates/layout.hbs");
    let text = std::fs::read_to_string(&layout).unwrap();
    let edited = text.replace(
        ">Create an account</a>",
        ">Create an account (checkout b)</a>",
    );
    assert_ne!(
        edited, text,
        "templates/layout.hbs has no `Create an account` link"
    );
    std::fs::write(&layout, edited).unwrap();
    let up = |checkout: &Path| {
        let started = Instant::now();
        let out = cloud
            .deployer(&["up", "--project-dir", checkout.to_str().unwrap()])
            .current_dir(checkout)
            .env("CARGO_TARGET_DIR", target_dir)
            .assert()
            .success();
        let report: Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        let name = checkout.file_name().unwrap().to_string_lossy().into_owned();
        eprintln!("up in checkout {name}: {:?}, {report}", started.elapsed());
        report
    };
    let sign_in_page = |report: &Value| {
        let page = http_get(&format!("{}signin", report["url"].as_str().unwrap())).unwrap();
        assert_eq!(page.status, 200, "{}", page.body_text());
        page.body_text()
    };

    let from_a = up(&a);
    assert_eq!(from_a["status"], "CREATE_COMPLETE", "{from_a}");
    assert!(!sign_in_page(&from_a).contains("(checkout b)"));

    // Checkout b, built into the same target directory after a: its own
    // template is served.
    let from_b = up(&b);
    assert_eq!(from_b["up_to_date"], false, "{from_b}");
    assert_ne!(from_b["artifact"]["key"], from_a["artifact"]["key"]);
    assert!(sign_in_page(&from_b).contains("Create an account (checkout b)"));
    assert!(b.join(".deployer/bootstrap").is_file());

    // Nothing changed in b: up to date, nothing built, nothing deployed.
    let again = up(&b);
    assert_eq!(again["up_to_date"], true, "{again}");
    assert_eq!(again["artifact"]["key"], from_b["artifact"]["key"]);
    assert_eq!(again["artifact"]["uploaded"], false);
    assert!(
        again["timings_ms"]["build"].as_u64().unwrap() < 1000,
        "{again}"
    );

    // Checkout a still deploys its own binary, though b rebuilt the shared
    // units since: no build, a's code back.
    let back = up(&a);
    assert_eq!(back["artifact"]["key"], from_a["artifact"]["key"], "{back}");
    assert!(
        back["timings_ms"]["build"].as_u64().unwrap() < 1000,
        "{back}"
    );
    assert!(!sign_in_page(&back).contains("(checkout b)"));
}

use predicates::prelude::PredicateBooleanExt;

/// The files under `dir`, dot-files skipped (as the sync sees them).
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
