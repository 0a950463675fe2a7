/* placeholder: being written */
extern int placeholder_sha256;
