/*
 * Machine inventory from CSV (RFC 4180), streamed: csvimp_new(), then
 * csvimp_feed() with the bytes as they come (any split, even one byte at a
 * time), then csvimp_finish(). No I/O: the caller reads the file or the
 * request body. The format, with examples and every message, is in
 * docs/inventory-import.md.
 *
 * The dialect: fields separated by ',', rows by LF, CRLF or a lone CR;
 * fields may be quoted with '"' ("" inside is one quote; quoted fields may
 * hold separators and line breaks); a UTF-8 BOM at the start is skipped;
 * blank lines are skipped; white space around a field (outside its quotes)
 * is ignored. The first row is the header: column names, case-insensitive,
 * from name, mac, ip, subnet, room, tags, notes; name is required, any
 * other may be left out; an unknown or repeated column is an error. In the
 * mac column, several addresses are separated by spaces or ';' (or ',' in
 * a quoted field); in the tags column, tags are separated by spaces or ';'.
 * A row may have fewer fields than the header (the rest are empty), not more.
 *
 * Results go to a struct match_sink (match.h): one record() per valid row,
 * one error() per bad row, and the import goes on past bad rows. Fatal
 * errors stop it: they are reported once through error() as well, and then
 * csvimp_feed()/csvimp_finish() return the code:
 *   -EINVAL  the header row is bad (unknown, repeated or missing column, or
 *            no header at all by csvimp_finish());
 *   -E2BIG   more than CSVIMP_MAX_ROWS data rows;
 *   other    a callback's negative return (a positive one becomes -ECANCELED).
 * After a fatal error, or after csvimp_finish(), every call returns an error
 * (-EINVAL if it was finish) and makes no callback.
 *
 * Hard caps: a row (its raw bytes, quotes included) is at most
 * CSVIMP_MAX_LINE bytes and CSVIMP_MAX_FIELDS fields; a longer row is a row
 * error (its bytes are read and dropped). The parser allocates one fixed
 * block at csvimp_new() and nothing after.
 */
#ifndef ML_IMPORT_CSV_H
#define ML_IMPORT_CSV_H

#include <stddef.h>

#include "match.h"

#define CSVIMP_MAX_LINE 8192
#define CSVIMP_MAX_ROWS 100000
#define CSVIMP_MAX_FIELDS 32

struct csvimp;

/* A new parser sending its results to *sink (copied). Returns NULL when out of memory. */
struct csvimp *csvimp_new(const struct match_sink *sink);
/* Parses the next len bytes. Returns 0, or a fatal error (see above). */
int csvimp_feed(struct csvimp *p, const void *buf, size_t len);
/* Ends the input: the last row need not end in a line break. Returns 0 or a fatal error. */
int csvimp_finish(struct csvimp *p);
/* Accepts NULL. */
void csvimp_free(struct csvimp *p);

/* new + feed + finish + free over a buffer in memory. Returns as csvimp_finish(), or -ENOMEM. */
int csvimp_parse(const void *buf, size_t len, const struct match_sink *sink);

#endif
