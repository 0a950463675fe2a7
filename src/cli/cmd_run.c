/* mlctl run ...: the runs of deployments. */
#include "mlctl.h"

static const struct col run_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"DEPLOYMENT", "deployment_name", C_STR, NULL},
    {"VERSION", NULL, C_FN, cmd_deploy_version},
    {"STATE", "state", C_STR, NULL},
    {"CAUSE", "cause", C_STR, NULL},
    {"DUE", "due_at", C_TIME, NULL},
    {"STARTED", "started_at", C_TIME, NULL},
    {"FINISHED", "finished_at", C_TIME, NULL},
    {"ERROR", "error", C_STR, NULL},
    {NULL, NULL, C_STR, NULL},
};

const struct res res_run = {"run", "/runs", NULL, false, false, run_cols, cmd_deploy_prep_versions};

static const struct opt run_list_opts[] = {
    {"deployment", V_ID, "DEPLOYMENT", "only runs of this deployment (id or name)", "?deployment",
     &res_deploy},
    {"state", V_VAL, "STATE", "pending, running, done, failed or cancelled", "?state", NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd run_cmds[] = {
    {"list", NULL, 0, 0, run_list_opts, res_cmd_list, "list runs, newest first", NULL,
     "  mlctl run list --deployment lab-b-win11 --state failed", &res_run, CMD_LIST},
    {"show", "ID", 1, 1, NULL, res_cmd_show, "show one run", NULL, "  mlctl run show 31", &res_run,
     0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_run_noun = {"run", "runs of deployments", run_cmds};
