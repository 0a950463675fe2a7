/*
 * Dropping root after binding (docs/server.md, "Running as root"). When
 * mlserver starts as root and [server] user is set, main() calls, in order:
 *
 *   priv_open()        resolve the user and group (unknown: a start-up error);
 *   priv_data_dir()    the data directory must belong to the user (a missing
 *                      one is created for it), else a start-up error;
 *   priv_as_user()     files created from here on (database, self-signed
 *                      certificate) belong to the user: effective ids only;
 *   priv_as_root()     back to root for what needs it (binding ports below
 *                      1024, reading a root-only TLS key);
 *   priv_drop()        after the last bind: real, effective and saved ids
 *                      become the user's for good, checked.
 *
 * Without root, or without a user, every call but priv_open() and
 * priv_drop() does nothing; priv_drop() then clears capabilities the process
 * was given (systemd's AmbientCapabilities=) and, with a user set, checks
 * that the process already runs as that user.
 *
 * The set*id calls go through glibc, which applies them to every thread of
 * the process (its setxid broadcast), so threads started in between run
 * with the same ids as main(); priv_drop() checks each thread's ids in
 * /proc/self/task.
 */
#ifndef ML_PRIV_H
#define ML_PRIV_H

#include <stddef.h>

struct priv;

/*
 * Resolves user (may be "" for none) and group ("" for the user's own).
 * Returns 0 with *out (free with priv_free), or -ENOENT / -EINVAL with a
 * reason in err.
 */
int priv_open(const char *user, const char *group, struct priv **out, char *err, size_t errsz);
void priv_free(struct priv *p);
/* Whether a switch happens: running as root and a user set. */
int priv_switching(const struct priv *p);
/*
 * Makes sure data_dir (created when missing) and db_path ("" for
 * data_dir/mlserver.db) belong to the user: the data directory, each entry
 * directly in it (but "tftp", which mlserver only reads) and the database
 * with its -wal and -shm files. Without root, a user set must be the
 * process's own. Returns 0 or a negative code with a reason
 * (naming the chown to run) in err. Nothing is changed but a directory it
 * creates.
 */
int priv_data_dir(const struct priv *p, const char *data_dir, const char *db_path, char *err,
                  size_t errsz);
/* Temporary switch of the effective ids; 0 or a negative code with err. */
int priv_as_user(const struct priv *p, char *err, size_t errsz);
int priv_as_root(const struct priv *p, char *err, size_t errsz);
/*
 * The permanent switch (see above). Logs "running as USER (uid N)".
 * Returns 0, or a negative code with err: then the process must stop.
 */
int priv_drop(const struct priv *p, char *err, size_t errsz);

#endif
