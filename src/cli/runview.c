/*
 * Runs and agent commands for people (mlctl.h, "rv"): the summary block,
 * the table of machines and the totals line of `run show` and `run watch`,
 * the table of commands of the rollback verbs, and what changed between two
 * polls of a run. Everything here is pure (no I/O, and no clock: the time
 * is an argument), so the unit tests and the fuzz harness can feed it any
 * JSON. Every string from the server goes through tbl_clean before it is
 * printed, so a machine name or a reason cannot move the cursor.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlctl.h"

/* The machine states in the order the totals line lists them. */
static const char *const rv_states[] = {"done",    "current", "receiving", "ready",
                                        "waiting", "missing", "failed",    "cancelled"};
#define RV_NSTATES (sizeof(rv_states) / sizeof(rv_states[0]))

/* A string field, or NULL when absent or not a string. Borrowed. */
static const char *rv_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A non-negative integer field: true with *v set, false when absent or not one. */
static bool rv_uint(const json_t *o, const char *key, uint64_t *v)
{
	const json_t *j = json_object_get(o, key);
	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return false;
	*v = (uint64_t)json_integer_value(j);
	return true;
}

void rv_duration(uint64_t ms, char *buf, size_t size)
{
	uint64_t s = ms / 1000;
	if (ms < 1000)
		snprintf(buf, size, "%llums", (unsigned long long)ms);
	else if (s < 60)
		snprintf(buf, size, "%llu.%llus", (unsigned long long)s,
		         (unsigned long long)(ms % 1000 / 100));
	else if (s < 3600)
		snprintf(buf, size, "%llum%02llus", (unsigned long long)(s / 60),
		         (unsigned long long)(s % 60));
	else if (s < 86400)
		snprintf(buf, size, "%lluh%02llum", (unsigned long long)(s / 3600),
		         (unsigned long long)(s % 3600 / 60));
	else
		snprintf(buf, size, "%llud%02lluh", (unsigned long long)(s / 86400),
		         (unsigned long long)(s % 86400 / 3600));
}

void rv_rate(uint64_t bps, char *buf, size_t size)
{
	static const char *const units[] = {"bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"};
	double v = (double)bps;
	size_t u = 0;
	while (v >= 1000 && u + 1 < sizeof(units) / sizeof(units[0])) {
		v /= 1000;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu bit/s", (unsigned long long)bps);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

char *rv_progress(const json_t *target, bool bar)
{
	uint64_t done = 0, need = 0;
	const char *state = rv_str(target, "state");
	double frac;
	char buf[64], bars[RV_BAR_WIDTH + 1];
	if (rv_uint(target, "chunks_needed", &need) && need > 0) {
		if (!rv_uint(target, "chunks_done", &done))
			done = 0;
		/* A count beyond what was needed (or a huge one) is shown as complete. */
		frac = done >= need ? 1.0 : (double)done / (double)need;
	} else if (state && strcmp(state, "done") == 0) {
		frac = 1.0;
	} else {
		return NULL;
	}
	/* 100% only when complete: 99.7% is not done. */
	int pct = frac >= 1.0 ? 100 : (int)(frac * 100);
	if (!bar) {
		snprintf(buf, sizeof(buf), "%d%%", pct);
		return strdup(buf);
	}
	size_t fill = frac >= 1.0 ? RV_BAR_WIDTH : (size_t)(frac * RV_BAR_WIDTH);
	for (size_t i = 0; i < RV_BAR_WIDTH; i++)
		bars[i] = i < fill ? '#' : '.';
	bars[RV_BAR_WIDTH] = '\0';
	snprintf(buf, sizeof(buf), "[%s] %3d%%", bars, pct);
	return strdup(buf);
}

int64_t rv_eta(const json_t *run)
{
	uint64_t rate;
	const json_t *t;
	size_t i;
	double left = -1;
	if (!rv_uint(run, "rate_bps", &rate) || rate == 0)
		return -1;
	/*
	 * Multicast sends every machine the same stream, so the run is done
	 * when the machine that needs most has it: the estimate is that
	 * machine's remaining bytes (its chunks left at the size its chunks
	 * so far had) at the current rate.
	 */
	json_array_foreach(json_object_get(run, "targets"), i, t)
	{
		uint64_t done, need, bytes;
		const char *state = rv_str(t, "state");
		if (!state || strcmp(state, "receiving") != 0 ||
		    !rv_uint(t, "chunks_done", &done) || !rv_uint(t, "chunks_needed", &need) ||
		    !rv_uint(t, "bytes", &bytes) || done == 0 || bytes == 0 || done >= need)
			continue;
		double l = (double)(need - done) * ((double)bytes / (double)done);
		if (l > left)
			left = l;
	}
	if (left < 0)
		return -1;
	double s = left * 8 / (double)rate;
	/* Beyond a year it is no estimate worth showing. */
	return s > 365.0 * 86400 ? -1 : (int64_t)(s + 0.5);
}

int rv_end(const json_t *run)
{
	const char *state = rv_str(run, "state");
	if (!state || strcmp(state, "pending") == 0 || strcmp(state, "running") == 0)
		return 0;
	/* Any other state has ended; only done ended well. */
	return strcmp(state, "done") == 0 ? 1 : -1;
}

/* An API time in local time with seconds, else the text, else NULL. */
static char *rv_time(const json_t *o, const char *key)
{
	const char *s = rv_str(o, key);
	char buf[64];
	if (!s)
		return NULL;
	if (when_local(s, true, buf, sizeof(buf)) == 0)
		return strdup(buf);
	return strdup(s);
}

static char *rv_dup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A machine's name for people: its name, else "#ID", else "?". */
static char *rv_machine(const json_t *t)
{
	const char *name = rv_str(t, "machine");
	const json_t *id = json_object_get(t, "machine_id");
	char buf[32];
	if (name && *name)
		return strdup(name);
	if (json_is_integer(id)) {
		snprintf(buf, sizeof(buf), "#%lld", (long long)json_integer_value(id));
		return strdup(buf);
	}
	return strdup("?");
}

/* "running (sending)": the state and, while there is one, the phase. */
static char *rv_state_text(const json_t *run)
{
	const char *state = rv_str(run, "state"), *phase = rv_str(run, "phase");
	struct sb s = {0};
	sb_add(&s, state ? state : "?");
	if (phase && *phase)
		sb_addf(&s, " (%s)", phase);
	return sb_take(&s);
}

/* "3.2 GiB, 812.0 Mbit/s, about 2m10s left", or NULL without sent_bytes. */
static char *rv_sent_text(const json_t *run)
{
	uint64_t sent, rate;
	char b[64];
	struct sb s = {0};
	if (!rv_uint(run, "sent_bytes", &sent))
		return NULL;
	out_size(sent, b, sizeof(b));
	sb_add(&s, b);
	if (rv_uint(run, "rate_bps", &rate) && rate > 0) {
		rv_rate(rate, b, sizeof(b));
		sb_addf(&s, ", %s", b);
		int64_t eta = rv_eta(run);
		if (eta >= 0) {
			rv_duration((uint64_t)eta * 1000, b, sizeof(b));
			sb_addf(&s, ", about %s left", b);
		}
	}
	return sb_take(&s);
}

char *rv_summary(const json_t *run)
{
	enum { N = 12 };
	const char *keys[N];
	char *vals[N] = {0};
	size_t n = 0, w = 0;
	char idbuf[32];
	const json_t *id = json_object_get(run, "id"), *retry = json_object_get(run, "retry_of");
	struct sb s = {0};
	bool oom = false;

	if (json_is_integer(id))
		snprintf(idbuf, sizeof(idbuf), "%lld", (long long)json_integer_value(id));
	else
		snprintf(idbuf, sizeof(idbuf), "?");
	keys[n] = "run";
	vals[n++] = strdup(idbuf);
	keys[n] = "deployment";
	if (rv_str(run, "deployment_name")) {
		vals[n++] = strdup(rv_str(run, "deployment_name"));
	} else if (json_is_integer(json_object_get(run, "deployment_id"))) {
		snprintf(idbuf, sizeof(idbuf), "#%lld",
		         (long long)json_integer_value(json_object_get(run, "deployment_id")));
		vals[n++] = strdup(idbuf);
	} else {
		vals[n++] = NULL;
	}
	keys[n] = "version";
	vals[n++] = cmd_deploy_version(run);
	keys[n] = "state";
	vals[n++] = rv_state_text(run);
	keys[n] = "cause";
	vals[n++] = rv_dup(rv_str(run, "cause"));
	if (json_is_integer(retry)) {
		snprintf(idbuf, sizeof(idbuf), "run %lld", (long long)json_integer_value(retry));
		keys[n] = "retry of";
		vals[n++] = strdup(idbuf);
	}
	keys[n] = "due";
	vals[n++] = rv_time(run, "due_at");
	keys[n] = "started";
	vals[n++] = rv_time(run, "started_at");
	keys[n] = "finished";
	vals[n++] = rv_time(run, "finished_at");
	if (json_is_integer(json_object_get(run, "sent_bytes"))) {
		keys[n] = "sent";
		vals[n++] = rv_sent_text(run);
	}
	if (rv_str(run, "mail")) {
		keys[n] = "mail";
		vals[n++] = strdup(rv_str(run, "mail"));
	}
	if (rv_str(run, "error") && *rv_str(run, "error")) {
		keys[n] = "error";
		vals[n++] = strdup(rv_str(run, "error"));
	}
	for (size_t i = 0; i < n; i++)
		if (strlen(keys[i]) > w)
			w = strlen(keys[i]);
	for (size_t i = 0; i < n; i++) {
		char *v = tbl_clean(vals[i] && *vals[i] ? vals[i] : "-", 0);
		if (!v) {
			oom = true;
			continue;
		}
		sb_addf(&s, "%s:%*s%s\n", keys[i], (int)(w + 1 - strlen(keys[i])), "", v);
		free(v);
	}
	for (size_t i = 0; i < n; i++)
		free(vals[i]);
	if (oom) {
		sb_free(&s);
		return NULL;
	}
	return sb_take(&s);
}

/* Bytes for a cell: "1.5 GiB", or NULL when absent or zero. */
static char *rv_bytes(const json_t *o, const char *key)
{
	uint64_t v;
	char buf[32];
	if (!rv_uint(o, key, &v) || v == 0)
		return NULL;
	out_size(v, buf, sizeof(buf));
	return strdup(buf);
}

/* Milliseconds for a cell: "3m12s", or NULL. */
static char *rv_ms(const json_t *o, const char *key)
{
	uint64_t v;
	char buf[32];
	if (!rv_uint(o, key, &v))
		return NULL;
	rv_duration(v, buf, sizeof(buf));
	return strdup(buf);
}

char *rv_table(const json_t *run, bool bars)
{
	static const char *const heads[] = {"MACHINE", "STATE", "PROGRESS", "BYTES",
	                                    "WOKEN",   "TIME",  "REASON"};
	const size_t ncols = sizeof(heads) / sizeof(heads[0]);
	const json_t *targets = json_object_get(run, "targets"), *t;
	size_t i;
	char *ret = NULL;
	if (json_array_size(targets) == 0)
		return strdup("(no machines)\n");
	struct tbl *tb = tbl_new(ncols);
	if (!tb)
		return NULL;
	for (size_t c = 0; c < ncols; c++)
		tbl_head(tb, c, heads[c], c == 3 || c == 5);
	json_array_foreach(targets, i, t)
	{
		char *cells[7] = {rv_machine(t),
		                  rv_dup(rv_str(t, "state")),
		                  rv_progress(t, bars),
		                  rv_bytes(t, "bytes"),
		                  rv_dup(rv_str(t, "woken")),
		                  rv_ms(t, "ms"),
		                  rv_dup(rv_str(t, "reason"))};
		int rc = 0;
		for (size_t c = 0; c < ncols; c++) {
			if (rc == 0)
				rc = tbl_add(tb, cells[c]);
			free(cells[c]);
		}
		if (rc < 0)
			goto out;
	}
	ret = tbl_render(tb);
out:
	tbl_free(tb);
	return ret;
}

char *rv_totals(const json_t *run)
{
	const json_t *tot = json_object_get(run, "totals"),
	             *targets = json_object_get(run, "targets");
	uint64_t counts[RV_NSTATES] = {0}, machines = 0, v;
	bool have = json_is_object(tot);
	struct sb s = {0};
	if (have) {
		if (!rv_uint(tot, "machines", &machines))
			machines = json_array_size(targets);
		for (size_t k = 0; k < RV_NSTATES; k++)
			if (rv_uint(tot, rv_states[k], &v))
				counts[k] = v;
	} else {
		/* An older or partial answer: count the targets themselves. */
		const json_t *t;
		size_t i;
		machines = json_array_size(targets);
		json_array_foreach(targets, i, t)
		{
			const char *st = rv_str(t, "state");
			for (size_t k = 0; st && k < RV_NSTATES; k++)
				if (strcmp(st, rv_states[k]) == 0)
					counts[k]++;
		}
	}
	sb_addf(&s, "%llu machine%s", (unsigned long long)machines, machines == 1 ? "" : "s");
	bool first = true;
	for (size_t k = 0; k < RV_NSTATES; k++) {
		if (!counts[k])
			continue;
		sb_addf(&s, "%s%llu %s", first ? ": " : ", ", (unsigned long long)counts[k],
		        rv_states[k]);
		first = false;
	}
	sb_addc(&s, '\n');
	return sb_take(&s);
}

char *rv_render(const json_t *run, bool bars)
{
	char *sum = rv_summary(run), *tab = rv_table(run, bars), *tot = rv_totals(run);
	struct sb s = {0};
	char *ret = NULL;
	if (sum && tab && tot) {
		sb_add(&s, sum);
		sb_addc(&s, '\n');
		sb_add(&s, tab);
		sb_addc(&s, '\n');
		sb_add(&s, tot);
		ret = sb_take(&s);
	}
	free(sum);
	free(tab);
	free(tot);
	return ret;
}

char *rv_command_result(const json_t *cmd)
{
	const json_t *res = json_object_get(cmd, "result");
	const char *reason = rv_str(res, "reason"), *outcome = rv_str(res, "outcome");
	const json_t *active = json_object_get(res, "active");
	char buf[128];
	if (reason && *reason)
		return strdup(reason);
	if (outcome) {
		snprintf(buf, sizeof(buf), "%s", outcome);
		return strdup(buf);
	}
	if (json_is_integer(active)) {
		snprintf(buf, sizeof(buf), "active version %lld",
		         (long long)json_integer_value(active));
		return strdup(buf);
	}
	if (!res || json_is_null(res) || (json_is_object(res) && json_object_size(res) == 0))
		return NULL;
	return json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
}

bool rv_command_ended(const json_t *cmd)
{
	static const char *const open[] = {"queued", "sent", "running"};
	const char *state = rv_str(cmd, "state");
	if (!state)
		return false;
	for (size_t i = 0; i < sizeof(open) / sizeof(open[0]); i++)
		if (strcmp(state, open[i]) == 0)
			return false;
	return true;
}

char *rv_commands(const json_t *cmds)
{
	static const char *const heads[] = {"ID", "MACHINE", "STATE", "RESULT"};
	const json_t *c;
	size_t i;
	char buf[32], *ret = NULL;
	struct tbl *tb = tbl_new(4);
	if (!tb)
		return NULL;
	for (size_t k = 0; k < 4; k++)
		tbl_head(tb, k, heads[k], k == 0);
	json_array_foreach(cmds, i, c)
	{
		const json_t *id = json_object_get(c, "id");
		if (json_is_integer(id))
			snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(id));
		else
			buf[0] = '\0';
		char *cells[4] = {strdup(buf), rv_machine(c), rv_dup(rv_str(c, "state")),
		                  rv_command_result(c)};
		int rc = 0;
		for (size_t k = 0; k < 4; k++) {
			if (rc == 0)
				rc = tbl_add(tb, cells[k]);
			free(cells[k]);
		}
		if (rc < 0)
			goto out;
	}
	ret = tbl_render(tb);
out:
	tbl_free(tb);
	return ret;
}

/* ------------------------------------------------------------ watching */

struct rv_watch {
	bool fed;
	char *state, *phase; /* the run's, as last seen (NULL: none) */
	json_t *seen;        /* machine key -> its state when last seen */
};

struct rv_watch *rv_watch_new(void)
{
	struct rv_watch *w = calloc(1, sizeof(*w));
	if (w && !(w->seen = json_object())) {
		free(w);
		return NULL;
	}
	return w;
}

void rv_watch_free(struct rv_watch *w)
{
	if (!w)
		return;
	free(w->state);
	free(w->phase);
	json_decref(w->seen);
	free(w);
}

static bool rv_same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Replaces *dst with a copy of src (NULL clears). false when out of memory. */
static bool rv_set(char **dst, const char *src)
{
	char *c = src ? strdup(src) : NULL;
	if (src && !c)
		return false;
	free(*dst);
	*dst = c;
	return true;
}

/* Appends text cleaned for a terminal and cut at maxw columns (0: no cut). */
static void rv_add_clean(struct sb *s, const char *text, size_t maxw)
{
	char *c = tbl_clean(text, maxw);
	if (!c) {
		s->oom = true;
		return;
	}
	sb_add(s, c);
	free(c);
}

/* The line of one machine whose state is new: "pc-101: waiting -> receiving". */
static void rv_machine_line(struct sb *s, const char *stamp, const json_t *t, const char *was,
                            const char *state)
{
	char *name = rv_machine(t);
	const char *reason = rv_str(t, "reason");
	char b1[32], b2[32];
	sb_addf(s, "%s ", stamp);
	rv_add_clean(s, name ? name : "?", 0);
	sb_add(s, ": ");
	if (was) {
		rv_add_clean(s, was, 40);
		sb_add(s, " -> ");
	}
	rv_add_clean(s, state, 40);
	if (strcmp(state, "done") == 0) {
		uint64_t bytes, ms;
		bool hb = rv_uint(t, "bytes", &bytes), hm = rv_uint(t, "ms", &ms);
		if (hb)
			out_size(bytes, b1, sizeof(b1));
		if (hm)
			rv_duration(ms, b2, sizeof(b2));
		if (hb && hm)
			sb_addf(s, " (%s in %s)", b1, b2);
		else if (hb || hm)
			sb_addf(s, " (%s)", hb ? b1 : b2);
	}
	if (reason && *reason) {
		sb_add(s, ": ");
		rv_add_clean(s, reason, 0);
	}
	sb_addc(s, '\n');
	free(name);
}

char *rv_watch_feed(struct rv_watch *w, const json_t *run, time_t now)
{
	const char *state = rv_str(run, "state"), *phase = rv_str(run, "phase");
	const json_t *id = json_object_get(run, "id"), *t;
	struct tm tm;
	char stamp[16] = "??:??:??";
	struct sb s = {0};
	size_t i;
	if (localtime_r(&now, &tm))
		strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	if (phase && !*phase)
		phase = NULL;
	if (!w->fed || !rv_same(state, w->state) || !rv_same(phase, w->phase)) {
		char *st = rv_state_text(run);
		sb_addf(&s, "%s run ", stamp);
		if (json_is_integer(id))
			sb_addf(&s, "%lld", (long long)json_integer_value(id));
		else
			sb_addc(&s, '?');
		sb_add(&s, ": ");
		rv_add_clean(&s, st ? st : "?", 80);
		sb_addc(&s, '\n');
		free(st);
		if (!rv_set(&w->state, state) || !rv_set(&w->phase, phase))
			s.oom = true;
	}
	w->fed = true;
	json_array_foreach(json_object_get(run, "targets"), i, t)
	{
		const json_t *mid = json_object_get(t, "machine_id");
		const char *mstate = rv_str(t, "state"), *name = rv_str(t, "machine");
		char key[64];
		struct sb k = {0};
		if (json_is_integer(mid)) {
			snprintf(key, sizeof(key), "id:%lld", (long long)json_integer_value(mid));
			sb_add(&k, key);
		} else if (name) {
			sb_add(&k, "name:");
			sb_add(&k, name);
		} else {
			snprintf(key, sizeof(key), "at:%zu", i);
			sb_add(&k, key);
		}
		char *kk = sb_take(&k);
		if (!kk) {
			s.oom = true;
			break;
		}
		const char *was = json_string_value(json_object_get(w->seen, kk));
		if (!mstate)
			mstate = "?";
		if (!was || strcmp(was, mstate) != 0) {
			rv_machine_line(&s, stamp, t, was, mstate);
			/* Names and states are stored as given, whatever their bytes. */
			if (json_object_set_new_nocheck(
			        w->seen, kk, json_stringn_nocheck(mstate, strlen(mstate))) < 0)
				s.oom = true;
		}
		free(kk);
	}
	if (s.oom) {
		sb_free(&s);
		return NULL;
	}
	return sb_take(&s);
}
