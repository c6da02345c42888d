//! Snapshots of every stage's template, and what each template must hold.

use std::collections::BTreeSet;

use deployer::stage::Stage;
use deployer::template::synth::Format;
use serde_json::{Value, json};

use crate::support::{project_dir, stages, template};

#[test]
fn every_stage_template_matches_its_snapshot() {
    for stage in stages() {
        let yaml = template(&stage, None).render(Format::Yaml).unwrap();
        insta::assert_snapshot!(format!("template_{stage}"), yaml);
    }
}

#[test]
fn templates_are_deterministic() {
    for stage in stages() {
        let a = template(&stage, None);
        let b = template(&stage, None);
        assert_eq!(
            a.render(Format::Yaml).unwrap(),
            b.render(Format::Yaml).unwrap()
        );
        assert_eq!(
            a.render(Format::Json).unwrap(),
            b.render(Format::Json).unwrap()
        );
    }
}

#[test]
fn templates_fit_the_inline_limit() {
    for stage in stages() {
        let t = template(&stage, None);
        assert!(t.fits_inline(), "{stage}: {} bytes", t.body().len());
    }
}

fn resource_types(t: &Value) -> BTreeSet<String> {
    t["Resources"]
        .as_object()
        .unwrap()
        .values()
        .map(|r| r["Type"].as_str().unwrap().to_owned())
        .collect()
}

fn resource_of_type<'a>(t: &'a Value, kind: &str) -> &'a Value {
    let mut found = t["Resources"]
        .as_object()
        .unwrap()
        .values()
        .filter(|r| r["Type"] == kind);
    let first = found.next().unwrap_or_else(|| panic!("no {kind}"));
    assert!(found.next().is_none(), "more than one {kind}");
    first
}

#[test]
fn every_required_resource_type_and_output_is_present() {
    for stage in stages() {
        let t = template(&stage, None);
        let types = resource_types(t.as_json());
        for kind in [
            "AWS::S3::Bucket",
            "AWS::DynamoDB::Table",
            "AWS::Cognito::UserPool",
            "AWS::Cognito::UserPoolClient",
            "AWS::IAM::Role",
            "AWS::Logs::LogGroup",
            "AWS::Lambda::Function",
            "AWS::ApiGateway::RestApi",
            "AWS::ApiGateway::Resource",
            "AWS::ApiGateway::Method",
            "AWS::ApiGateway::Deployment",
            "AWS::ApiGateway::Stage",
            "AWS::Lambda::Permission",
        ] {
            assert!(types.contains(kind), "{stage}: no {kind}");
        }
        // The app has its own sign-in forms: no hosted-UI domain to squat or pay for.
        assert!(!types.contains("AWS::Cognito::UserPoolDomain"), "{stage}");
        let outputs: BTreeSet<&str> = t.as_json()["Outputs"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            outputs,
            BTreeSet::from([
                "ApiUrl",
                "StaticUrl",
                "BucketName",
                "TableName",
                "UserPoolId",
                "UserPoolClientId",
                "FunctionName"
            ])
        );
    }
}

#[test]
fn bucket_cors_equals_the_stage_file() {
    for stage_name in stages() {
        let stage = Stage::load(&project_dir(), &stage_name).unwrap();
        let t = template(&stage_name, None);
        let rule = &resource_of_type(t.as_json(), "AWS::S3::Bucket")["Properties"]["CorsConfiguration"]
            ["CorsRules"][0];
        let cfg = &stage.config.bucket;
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(
            strings(&rule["AllowedOrigins"]),
            cfg.cors_allowed_origins
                .iter()
                .map(|o| o.as_str().to_owned())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            strings(&rule["AllowedMethods"]),
            cfg.cors_allowed_methods
                .iter()
                .map(|m| m.as_str().to_owned())
                .collect::<Vec<_>>()
        );
        assert_eq!(
            strings(&rule["AllowedHeaders"]),
            cfg.cors_allowed_headers
                .iter()
                .map(|h| h.as_str().to_owned())
                .collect::<Vec<_>>()
        );
        assert_eq!(rule["MaxAge"], json!(cfg.cors_max_age.get()));
    }
}

#[test]
fn table_capacity_and_retention_follow_the_stage_file() {
    for stage_name in stages() {
        let stage = Stage::load(&project_dir(), &stage_name).unwrap();
        let t = template(&stage_name, None);
        let table = resource_of_type(t.as_json(), "AWS::DynamoDB::Table");
        let throughput = &table["Properties"]["ProvisionedThroughput"];
        assert_eq!(
            throughput["ReadCapacityUnits"],
            json!(stage.config.table.read_capacity.get())
        );
        assert_eq!(
            throughput["WriteCapacityUnits"],
            json!(stage.config.table.write_capacity.get())
        );
        let (deletion, replace) = if stage.config.retain_data {
            ("RetainExceptOnCreate", "Retain")
        } else {
            ("Delete", "Delete")
        };
        for kind in ["AWS::DynamoDB::Table", "AWS::S3::Bucket"] {
            let r = resource_of_type(t.as_json(), kind);
            assert_eq!(r["DeletionPolicy"], deletion, "{stage_name} {kind}");
            assert_eq!(r["UpdateReplacePolicy"], replace, "{stage_name} {kind}");
        }
        assert_eq!(
            table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            json!(stage.config.retain_data)
        );
    }
}

#[test]
fn prod_retains_data_and_dev_does_not() {
    let prod = template("prod", None);
    let dev = template("dev", None);
    // Everything a user needs survives a retained stage's `down`: the table,
    // the bucket and the user pool (photos are keyed by the pool's `sub`).
    // `RetainExceptOnCreate`: a failed first create leaves nothing behind.
    for kind in [
        "AWS::S3::Bucket",
        "AWS::DynamoDB::Table",
        "AWS::Cognito::UserPool",
    ] {
        let retained = resource_of_type(prod.as_json(), kind);
        assert_eq!(retained["DeletionPolicy"], "RetainExceptOnCreate", "{kind}");
        assert_eq!(retained["UpdateReplacePolicy"], "Retain", "{kind}");
        assert_eq!(
            resource_of_type(dev.as_json(), kind)["DeletionPolicy"],
            "Delete",
            "{kind}"
        );
    }
    let pool = &resource_of_type(prod.as_json(), "AWS::Cognito::UserPool")["Properties"];
    assert_eq!(pool["DeletionProtection"], "ACTIVE");
    let table = &resource_of_type(prod.as_json(), "AWS::DynamoDB::Table")["Properties"];
    assert_eq!(table["DeletionProtectionEnabled"], true);
    let bucket = &resource_of_type(prod.as_json(), "AWS::S3::Bucket")["Properties"];
    assert_eq!(bucket["VersioningConfiguration"]["Status"], "Enabled");
    let expiry = bucket["LifecycleConfiguration"]["Rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["Id"] == "ExpireOldVersions")
        .unwrap();
    assert_eq!(expiry["NoncurrentVersionExpiration"]["NoncurrentDays"], 30);
    let dev_bucket = &resource_of_type(dev.as_json(), "AWS::S3::Bucket")["Properties"];
    assert!(dev_bucket.get("VersioningConfiguration").is_none());
    let dev_pool = &resource_of_type(dev.as_json(), "AWS::Cognito::UserPool")["Properties"];
    assert_eq!(dev_pool["DeletionProtection"], "INACTIVE");
}

#[test]
fn role_policy_has_no_wildcard_actions() {
    for stage in stages() {
        let t = template(&stage, None);
        let roles = t.as_json()["Resources"]
            .as_object()
            .unwrap()
            .values()
            .filter(|r| r["Type"] == "AWS::IAM::Role");
        let policies = roles.flat_map(|r| {
            r["Properties"]["Policies"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        });
        for policy in policies {
            for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
                for action in statement["Action"].as_array().unwrap() {
                    assert!(!action.as_str().unwrap().contains('*'), "{action}");
                }
                for resource in statement["Resource"].as_array().unwrap() {
                    assert_ne!(resource, "*");
                }
            }
        }
    }
}

#[test]
fn function_runs_provided_al2023_with_code_from_parameters() {
    let t = template("dev", None);
    let f = &resource_of_type(t.as_json(), "AWS::Lambda::Function")["Properties"];
    assert_eq!(f["Runtime"], "provided.al2023");
    assert_eq!(f["Handler"], "bootstrap");
    assert_eq!(f["Code"]["S3Bucket"], json!({"Ref": "CodeBucket"}));
    assert_eq!(f["Code"]["S3Key"], json!({"Ref": "CodeKey"}));
    let env = f["Environment"]["Variables"].as_object().unwrap();
    for name in [
        "TABLE_NAME",
        "BUCKET_NAME",
        "USER_POOL_ID",
        "USER_POOL_CLIENT_ID",
        "STAGE",
    ] {
        assert!(env.contains_key(name), "{name}");
    }
    assert!(!env.contains_key("AWS_ENDPOINT_URL"));
    // The issuer is built with Fn::Sub, never GetAtt ProviderURL.
    assert!(!t.body().contains("ProviderURL"));
}

#[test]
fn an_endpoint_adds_the_emulator_settings_only() {
    let aws = template("dev", None);
    let local = template("dev", Some("http://127.0.0.1:4599"));
    let env = |t: &deployer::template::synth::Template| {
        resource_of_type(t.as_json(), "AWS::Lambda::Function")["Properties"]["Environment"]
            ["Variables"]
            .clone()
    };
    assert_eq!(env(&local)["AWS_ENDPOINT_URL"], "http://127.0.0.1:4599");
    assert!(env(&aws).get("AWS_ENDPOINT_URL").is_none());
    assert_eq!(
        local.as_json()["Outputs"]["ApiUrl"]["Value"],
        json!({"Fn::Sub": "http://${Api}.execute-api.localhost:4599/dev/"})
    );
}

/// The AWS SDK calls in the app's code (tests left out), as IAM actions.
fn actions_the_app_calls() -> BTreeSet<String> {
    // Every operation the app could call; a new one must be added here and to the role.
    const OPERATIONS: [(&str, &str); 16] = [
        ("batch_get_item", "dynamodb:BatchGetItem"),
        ("delete_item", "dynamodb:DeleteItem"),
        ("get_item", "dynamodb:GetItem"),
        ("put_item", "dynamodb:PutItem"),
        ("query", "dynamodb:Query"),
        ("scan", "dynamodb:Scan"),
        ("update_item", "dynamodb:UpdateItem"),
        ("batch_write_item", "dynamodb:BatchWriteItem"),
        ("copy_object", "s3:GetObject"),
        ("delete_object", "s3:DeleteObject"),
        ("get_object", "s3:GetObject"),
        ("head_object", "s3:GetObject"),
        ("put_object", "s3:PutObject"),
        ("list_objects_v2", "s3:ListBucket"),
        (
            "describe_user_pool_client",
            "cognito-idp:DescribeUserPoolClient",
        ),
        ("admin_get_user", "cognito-idp:AdminGetUser"),
    ];
    let mut actions = BTreeSet::new();
    let mut pending = vec![project_dir().join("app/src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (operation, action) in OPERATIONS {
                if code.contains(&format!(".{operation}()")) {
                    actions.insert(action.to_owned());
                }
            }
            // A transaction writes with the actions of the items it holds.
            if code.contains(".transact_write_items()") {
                for (item, action) in [
                    (".put(", "dynamodb:PutItem"),
                    (".delete(", "dynamodb:DeleteItem"),
                    (".update(", "dynamodb:UpdateItem"),
                    (".condition_check(", "dynamodb:ConditionCheckItem"),
                ] {
                    if code.contains(item) {
                        actions.insert(action.to_owned());
                    }
                }
            }
        }
    }
    // `copy_object` also writes its target.
    actions.insert("s3:PutObject".to_owned());
    actions
}

/// Least privilege: the app's role allows what the app calls and nothing
/// more. Besides the SDK calls, the function writes its own logs, and
/// `s3:ListBucket` on the photo prefix makes S3 answer a `HeadObject` on a
/// missing key with 404 rather than 403 (the emulator never says 403).
#[test]
fn the_app_role_allows_exactly_what_the_app_calls() {
    let mut expected = actions_the_app_calls();
    expected
        .extend(["logs:CreateLogStream", "logs:PutLogEvents", "s3:ListBucket"].map(str::to_owned));
    for stage in stages() {
        let t = template(&stage, None);
        let role = &t.as_json()["Resources"]["AppRole"];
        let mut granted = BTreeSet::new();
        for policy in role["Properties"]["Policies"].as_array().unwrap() {
            for statement in policy["PolicyDocument"]["Statement"].as_array().unwrap() {
                assert_eq!(statement["Effect"], "Allow");
                let actions = &statement["Action"];
                match actions {
                    Value::String(a) => {
                        granted.insert(a.clone());
                    }
                    Value::Array(list) => {
                        granted.extend(list.iter().map(|a| a.as_str().unwrap().to_owned()));
                    }
                    other => panic!("{stage}: action {other}"),
                }
                for resource in statement["Resource"].as_array().into_iter().flatten() {
                    assert_ne!(resource, "*", "{stage}: a wildcard resource");
                }
            }
        }
        assert!(
            granted.iter().all(|a| !a.contains('*')),
            "{stage}: {granted:?}"
        );
        assert_eq!(granted, expected, "{stage}");
    }
}

/// Uploads the app never claimed expire; photos and thumbnails never do.
#[test]
fn unclaimed_uploads_expire_and_photos_do_not() {
    for stage in stages() {
        let t = template(&stage, None);
        let bucket = resource_of_type(t.as_json(), "AWS::S3::Bucket");
        let rules = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
            .as_array()
            .unwrap();
        let expiring: Vec<&Value> = rules
            .iter()
            .filter(|r| r.get("ExpirationInDays").is_some())
            .collect();
        assert_eq!(expiring.len(), 1, "{stage}: {rules:?}");
        assert_eq!(expiring[0]["Prefix"], contract::prefix::STAGING, "{stage}");
        assert_eq!(
            expiring[0]["ExpirationInDays"],
            contract::defaults::STAGING_EXPIRY_DAYS,
            "{stage}"
        );
    }
}

/// Stages with real users (retained data) are throttled and keep access logs
/// in a log group of their own; the role API Gateway logs with outlives the
/// stack, since the region's API Gateway settings keep naming it.
#[test]
fn retained_stages_throttle_the_api_and_keep_access_logs() {
    let prod = template("prod", None);
    let resources = &prod.as_json()["Resources"];
    let stage = &resources["ApiStage"];
    let settings = &stage["Properties"]["MethodSettings"][0];
    assert_eq!(settings["ResourcePath"], "/*");
    assert_eq!(settings["HttpMethod"], "*");
    assert_eq!(
        settings["ThrottlingRateLimit"],
        deployer::stage::defaults::API_RATE_LIMIT
    );
    assert_eq!(
        settings["ThrottlingBurstLimit"],
        deployer::stage::defaults::API_BURST_LIMIT
    );
    let logs = &stage["Properties"]["AccessLogSetting"];
    assert_eq!(
        logs["DestinationArn"],
        json!({ "Fn::GetAtt": ["ApiAccessLogGroup", "Arn"] })
    );
    let format: Value = serde_json::from_str(logs["Format"].as_str().unwrap()).unwrap();
    assert_eq!(format["status"], "$context.status");
    // Logs need the account's logging role first.
    assert_eq!(stage["DependsOn"], json!(["ApiGatewayAccount"]));
    assert_eq!(
        resources["ApiGatewayAccount"]["Properties"]["CloudWatchRoleArn"],
        json!({ "Fn::GetAtt": ["ApiGatewayLogsRole", "Arn"] })
    );
    let role = &resources["ApiGatewayLogsRole"];
    assert_eq!(role["DeletionPolicy"], "RetainExceptOnCreate");
    assert_eq!(
        role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        json!(["apigateway.amazonaws.com"])
    );
    assert_eq!(
        resources["ApiAccessLogGroup"]["Properties"]["LogGroupName"],
        "/aws/apigateway/cloudalbum-prod/access"
    );
    // A stage without real users has none of it unless it asks.
    let dev = template("dev", None);
    let resources = &dev.as_json()["Resources"];
    assert!(resources["ApiStage"]["Properties"]["MethodSettings"].is_null());
    assert!(resources["ApiStage"]["Properties"]["AccessLogSetting"].is_null());
    assert!(resources["ApiGatewayAccount"].is_null());
}

#[test]
fn the_inner_loop_stages_build_fast_and_a_stage_with_users_ships_release() {
    use deployer::stage::BuildProfile;
    for stage in stages() {
        let config = Stage::load(&project_dir(), &stage).unwrap().config;
        let expected = if config.retain_data {
            BuildProfile::Release
        } else {
            BuildProfile::Fast
        };
        assert_eq!(
            config.function.build_profile, expected,
            "stacks/{stage}.yaml"
        );
    }
    let prod = Stage::load(&project_dir(), "prod").unwrap().config;
    assert!(prod.retain_data);
    assert_eq!(prod.function.build_profile, BuildProfile::Release);
}
