/* mlctl command ...: the agents' command queue (receive, wol, rollback, cancel). */
#include "mlctl.h"

static const struct col command_cols[] = {
    {"ID", "id", C_NUM, NULL},
    {"MACHINE", "machine", C_STR, NULL},
    {"KIND", "kind", C_STR, NULL},
    {"STATE", "state", C_STR, NULL},
    {"PHASE", "phase", C_STR, NULL},
    {"RUN", "run_id", C_NUM, NULL},
    {"CREATED", "created_at", C_TIME, NULL},
    {"UPDATED", "updated_at", C_TIME, NULL},
    {"RESULT", NULL, C_FN, rv_command_result},
    {NULL, NULL, C_STR, NULL},
};

const struct res res_command = {"command", "/commands", NULL, false, false, command_cols, NULL};

static const struct opt command_list_opts[] = {
    {"machine", V_ID, "MACHINE", "only this machine's commands (id or name)", "?machine",
     &res_machine},
    {"run", V_ID, "RUN", "only the commands of this run", "?run", &res_run},
    {"state", V_VAL, "STATE", "queued, sent, running, done, failed, cancelled or expired", "?state",
     NULL},
    {NULL, V_FLAG, NULL, NULL, NULL, NULL},
};

static const struct cmd command_cmds[] = {
    {"list", NULL, 0, 0, command_list_opts, res_cmd_list, "list the agents' commands, newest first",
     NULL, "  mlctl command list --machine pc-101\n  mlctl command list --run 31 --state failed",
     &res_command, CMD_LIST},
    {"show", "ID", 1, 1, NULL, res_cmd_show, "show one command with its arguments and result", NULL,
     "  mlctl command show 91", &res_command, 0},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, 0},
};

const struct noun cmd_command_noun = {"command", "commands queued for the machines' agents",
                                      command_cmds};
