# run_deployer ARGS...: runs the deployer built above with ARGS, keeps its
# JSON report in deployer.json and acts on its exit codes (README, "Exit
# codes"): a transient failure (5) is retried once; every other failure
# fails the step with an annotation saying what to do.
run_deployer() {
  local attempt code
  for attempt in 1 2; do
    code=0
    "$DEPLOYER_BIN" "$@" > deployer.json || code=$?
    if [ "$code" = 0 ]; then
      return 0
    fi
    if [ "$code" = 5 ] && [ "$attempt" = 1 ]; then
      echo "::warning::deployer $1: AWS or the network failed transiently (exit 5); retrying once in 30 s"
      sleep 30
      continue
    fi
    case "$code" in
      2) echo "::error::deployer $1: invalid input or usage (exit 2); the message above names the file, field or flag" ;;
      3) echo "::error::deployer $1: credentials or permissions (exit 3); check vars.AWS_DEPLOY_ROLE_ARN, the role's trust policy for this repository and its permissions" ;;
      4) echo "::error::deployer $1 refused to replace or delete data (exit 4); nothing was changed. Review the resources named above (deployer plan), and only if their data may really go, re-run by hand with --allow-replace <LogicalId> for each" ;;
      5) echo "::error::deployer $1: AWS or the network still failed transiently after a retry (exit 5); re-run the job, it resumes" ;;
      *) echo "::error::deployer $1 failed (exit $code); the stack was rolled back; read the failed resources' reasons above" ;;
    esac
    return "$code"
  done
}
