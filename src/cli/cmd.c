/* The command table: every noun mlctl knows, in the order --help lists them. */
#include <stddef.h>

#include "mlctl.h"

const struct noun *const cmd_nouns[] = {
    &cmd_login_noun,     &cmd_logout_noun,  &cmd_whoami_noun,
    &cmd_passwd_noun,    &cmd_health_noun,  &cmd_user_noun,
    &cmd_token_noun,     &cmd_audit_noun,   &cmd_image_noun,
    &cmd_library_noun,   &cmd_machine_noun, &cmd_group_noun,
    &cmd_criterion_noun, &cmd_entry_noun,   &cmd_right_noun,
    &cmd_deploy_noun,    &cmd_run_noun,     &cmd_command_noun,
    &cmd_agent_noun,     &cmd_enroll_noun,  NULL,
};
