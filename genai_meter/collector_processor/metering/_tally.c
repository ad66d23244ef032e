/*
 * _tally: `Tally.run` (metering/tally.py) in C, the optional accelerator of the bulk count of templated calls.
 *
 * run(tally, spans, start) -> int does what `Tally.run_pure(spans, start)` does: the same return value and
 * the same changes to tally.groups, tally.group_index, tally.taken and the shared `parents` dict, span by span
 * in order. tally.py is the reference; tests/metering/test_tally.py compares both on every fixture, the
 * benchmark bodies and generated runs.
 *
 * How it stays exact:
 * - every "not taken" test of `Tally._take` is made here in the same terms (exact dict and int types,
 *   0 <= n <= max_tokens, identity of the resource caches, the price limits of `_price` in int64 / __int128
 *   with floor division and half-even rounding as `pico_cost`, each class and the six classes' sum within
 *   -2^63 < x < 2^63, a TypeError while hashing the template key);
 * - whatever the fast path does not model (a non-int time, a non-bytes id, odd events, rates that are not
 *   plain ints, a hashing error other than TypeError...) is handed, before anything was changed for that
 *   span, to the reference `tally._take(span)` itself; so is every span that could run Python code here:
 *   a span type whose fields are not plain slots (or that changed since its offsets were read), attribute
 *   keys, a scope name, event names or a trace state that are not exact str, an is_error that is not a
 *   bool, template values other than None, bool, exact int, float, str, bytes, list, dict and tuples of
 *   those (a str subclass's __hash__ or __eq__ could change the span under the C code's feet); a tally
 *   whose settings the fast path does not model
 *   (bounds that are not floats, max_tokens outside +-2^62, spans neither list nor tuple, start < 0) runs
 *   `tally.run_pure` from there on. So odd data gives the reference's outcome, exception included;
 * - floats as Python computes them: `elapsed / 1e9` is (double)elapsed / 1e9 (int64 converts exactly
 *   rounded, as PyLong_AsDouble), buckets by bisect_left over the float bounds; a duration or a time to
 *   first token outside 0..MAX_CALL_NS (conventions.times) is unknown (0.0 / None), as in the reference;
 * - group sums (calls, tokens, costs, bucket counts) are added up in C and added to the group's ints when run
 *   returns (also on an error), which gives the same ints as adding them span by span; the observed
 *   durations and ttfts, the taken tuples and the parents dict change span by span.
 * The tally's attributes are read once per call (when the call meets its first span with a plan). Per call:
 * the last shape's plan (spans of one scope with the same interned key objects skip the plans lookup; the
 * plans dict does not change during a call), each plan's value keys, the groups met. Across calls: each
 * entry's rates (entries are immutable; the cache holds them, so an address stays theirs; bounded, emptied
 * when full). The GIL is held throughout; caches hold strong references, and every object read from a
 * span (its fields, token counts, events) is held by a strong reference for as long as it is used, so a
 * call that runs Python code (a lookup that meets a hostile key already in a dict, the tally's own
 * attributes) cannot free it under the C code's feet.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#define TAKEN 1
#define NOT_TAKEN 0
#define ERR (-1)   /* a Python exception is set */
#define SLOW 2     /* hand this span to tally._take (nothing changed for it yet) */
#define WHOLE 3    /* run tally.run_pure from this span on */

/* Group list fields (tally.G_*), checked against the module at first use. */
enum { G_ENTRY = 0, G_USED = 1, G_CALLS = 2, G_TOKENS = 3, G_COSTS = 8, G_DUR_COUNTS = 14, G_DURS = 15,
       G_TTFT_COUNTS = 16, G_TTFTS = 17, G_LEN = 18 };
#define UNPRICED (-1)
#define MAX_TOKENS_LIMIT ((int64_t)1 << 62)
#define MAX_CALL_NS ((int64_t)86400 * 1000000000) /* conventions.times.MAX_CALL_NS, checked at first use */
#define MAX_PLAIN_DEPTH 8 /* nested tuples in a template value looked into */
#define INT63_MAX INT64_MAX

/* SpanRecord fields read here. */
enum { S_ATTRIBUTES, S_RESOURCE, S_START, S_END, S_IS_ERROR, S_SCOPE, S_TRACE_ID, S_SPAN_ID, S_PARENT,
       S_TRACE_STATE, S_EVENTS, S_N };
static const char *const span_field_names[S_N] = {
    "attributes", "resource", "start_ns", "end_ns", "is_error", "scope_name", "trace_id", "span_id",
    "parent_span_id", "trace_state", "events"};

/* Module-level state: interned names and the reference module's constants (loaded at first use). */
static PyObject *span_fields[S_N];
static PyObject *str_plans, *str_templates, *str_conventions, *str_meter, *str_last_resource, *str_resource_ids,
    *str_parents, *str_max_parents, *str_max_tokens, *str_weight_sampled, *str_duration_bounds, *str_ttft_bounds,
    *str_groups, *str_group_index, *str_taken, *str_run_pure, *str_take, *str_template, *str_value_keys,
    *str_plan, *str_pico_rates, *str_call, *str_cache_write_1h;
static PyTypeObject *taken_type;       /* tally.Taken */
static PyObject *conversation_or_user; /* tally.CONVERSATION_OR_USER_KEYS */
static PyObject *first_token_events;   /* tally.FIRST_TOKEN_EVENTS */
static PyObject *token_keys[5];        /* tally.TOKEN_KEYS */
static PyObject *zero_costs;           /* (0, 0, 0, 0, 0, 0) */
static PyObject *zero_int;             /* 0 */

/* The last span type seen: whether its fields are plain slots (read here without running Python code),
 * their offsets, and its version tag then (a change to the type invalidates it). */
static PyTypeObject *span_type;
static unsigned int span_type_tag;
static int span_type_plain;
static Py_ssize_t span_offsets[S_N];

/* ------------------------------------------------------------------------------------------------
 * A small open-addressing map (pointer, int64) -> index, for the per-call caches.
 */
typedef struct {
    const void *key;
    int64_t extra;
    Py_ssize_t value; /* -1: empty */
} Slot;

typedef struct {
    Slot *slots;
    size_t mask;
    size_t used;
} Map;

static size_t map_hash(const void *key, int64_t extra) {
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9E3779B97F4A7C15ull ^ (uint64_t)extra * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h ^ (h >> 29));
}

static Py_ssize_t map_get(const Map *m, const void *key, int64_t extra) {
    if (m->slots == NULL)
        return -1;
    for (size_t i = map_hash(key, extra) & m->mask;; i = (i + 1) & m->mask) {
        const Slot *s = &m->slots[i];
        if (s->value < 0)
            return -1;
        if (s->key == key && s->extra == extra)
            return s->value;
    }
}

static int map_put(Map *m, const void *key, int64_t extra, Py_ssize_t value) {
    if (m->slots == NULL || 2 * (m->used + 1) > m->mask + 1) {
        size_t size = m->slots == NULL ? 16 : 2 * (m->mask + 1);
        Slot *slots = PyMem_Malloc(size * sizeof(Slot));
        if (slots == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (size_t i = 0; i < size; i++)
            slots[i].value = -1;
        if (m->slots != NULL) {
            for (size_t j = 0; j <= m->mask; j++) {
                Slot *s = &m->slots[j];
                if (s->value < 0)
                    continue;
                size_t i = map_hash(s->key, s->extra) & (size - 1);
                while (slots[i].value >= 0)
                    i = (i + 1) & (size - 1);
                slots[i] = *s;
            }
            PyMem_Free(m->slots);
        }
        m->slots = slots;
        m->mask = size - 1;
    }
    size_t i = map_hash(key, extra) & m->mask;
    while (m->slots[i].value >= 0)
        i = (i + 1) & m->mask;
    m->slots[i].key = key;
    m->slots[i].extra = extra;
    m->slots[i].value = value;
    m->used++;
    return 0;
}

/* Grow a PyMem array of `size`-byte items to hold `need` items. */
static int grow(void **items, Py_ssize_t *cap, Py_ssize_t need, size_t size) {
    if (need <= *cap)
        return 0;
    Py_ssize_t n = *cap ? 2 * *cap : 16;
    while (n < need)
        n *= 2;
    void *p = PyMem_Realloc(*items, (size_t)n * size);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *items = p;
    *cap = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Per-call state
 */
typedef struct {
    PyObject *plan;       /* strong */
    PyObject *keys;       /* strong: the attribute keys the flags below were worked out for */
    PyObject *value_keys; /* strong; NULL: the plan has no template */
    int disjoint;         /* no conversation or user key among `keys` */
} PlanInfo;

typedef struct {
    PyObject *entry; /* strong */
    int slow;        /* its spans go through tally._take */
    int priced;
    int one_hour;
    int64_t num[6], den[6], lim[6];
    unsigned char in_range[6]; /* numerator and denominator within the limits `_price` checks */
    PyObject *fee;             /* strong: pico_rates[18] */
    int64_t fee_v;
} EntryInfo;

typedef struct {
    PyObject *entry; /* strong */
    int64_t used;
    PyObject *group, *index, *durs, *ttfts; /* strong */
    int64_t calls;
    __int128 tokens[5], costs[6];
    int64_t *buckets; /* duration bucket counts, then ttft bucket counts */
} GroupAcc;

typedef struct {
    PyObject *tally;
    PyObject *plans; /* strong */
    int ready;       /* the attributes below are read */
    PyObject *templates, *last, *ids, *parents, *groups, *group_index, *taken; /* strong */
    PyObject *last0, *ids0, *rkey; /* borrowed from last / ids */
    int ids_blocked, weight_sampled;
    int64_t max_parents, max_tokens;
    double *bounds; /* nd duration bounds, then nt ttft bounds */
    Py_ssize_t nd, nt;
    PlanInfo *plan_infos;
    Py_ssize_t n_plans, cap_plans;
    Map plan_map;
    GroupAcc *accs;
    Py_ssize_t n_accs, cap_accs;
    Map acc_map;
    /* the last shape looked up: (scope, attribute keys) -> plan (NULL: absent); the plans dict does not
     * change during a call */
    PyObject *last_scope, *last_keys, *last_plan; /* strong */
} Run;

static void run_free(Run *R) {
    Py_XDECREF(R->last_scope);
    Py_XDECREF(R->last_keys);
    Py_XDECREF(R->last_plan);
    Py_XDECREF(R->plans);
    Py_XDECREF(R->templates);
    Py_XDECREF(R->last);
    Py_XDECREF(R->ids);
    Py_XDECREF(R->parents);
    Py_XDECREF(R->groups);
    Py_XDECREF(R->group_index);
    Py_XDECREF(R->taken);
    PyMem_Free(R->bounds);
    for (Py_ssize_t i = 0; i < R->n_plans; i++) {
        Py_DECREF(R->plan_infos[i].plan);
        Py_DECREF(R->plan_infos[i].keys);
        Py_XDECREF(R->plan_infos[i].value_keys);
    }
    PyMem_Free(R->plan_infos);
    PyMem_Free(R->plan_map.slots);
    for (Py_ssize_t i = 0; i < R->n_accs; i++) {
        GroupAcc *a = &R->accs[i];
        Py_DECREF(a->entry);
        Py_DECREF(a->group);
        Py_DECREF(a->index);
        Py_DECREF(a->durs);
        Py_DECREF(a->ttfts);
        PyMem_Free(a->buckets);
    }
    PyMem_Free(R->accs);
    PyMem_Free(R->acc_map.slots);
}

/* A MemoryError stays an error; any other exception is cleared and the span goes to the reference. */
static int soft(void) {
    if (PyErr_ExceptionMatches(PyExc_MemoryError))
        return ERR;
    PyErr_Clear();
    return SLOW;
}

/* An exact int as int64 (*ok = 0 when it is no exact int or does not fit). */
static int64_t exact_int64(PyObject *v, int *ok) {
    if (!PyLong_CheckExact(v)) {
        *ok = 0;
        return 0;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    *ok = overflow == 0;
    return (int64_t)x;
}

static PyObject *long_from_i128(__int128 v) {
    if (v >= INT64_MIN && v <= INT64_MAX)
        return PyLong_FromLongLong((long long)v);
    int negative = v < 0;
    unsigned __int128 u = negative ? -(unsigned __int128)v : (unsigned __int128)v;
    PyObject *hi = PyLong_FromUnsignedLongLong((unsigned long long)(u >> 64));
    PyObject *lo = PyLong_FromUnsignedLongLong((unsigned long long)u);
    PyObject *shift = PyLong_FromLong(64);
    PyObject *out = NULL, *shifted = NULL, *sum = NULL;
    if (hi != NULL && lo != NULL && shift != NULL && (shifted = PyNumber_Lshift(hi, shift)) != NULL &&
        (sum = PyNumber_Or(shifted, lo)) != NULL)
        out = negative ? PyNumber_Negative(sum) : (Py_INCREF(sum), sum);
    Py_XDECREF(hi);
    Py_XDECREF(lo);
    Py_XDECREF(shift);
    Py_XDECREF(shifted);
    Py_XDECREF(sum);
    return out;
}

/* ------------------------------------------------------------------------------------------------
 * Setup
 */
static PyObject *module_attr(PyObject *module, const char *name) {
    PyObject *v = PyObject_GetAttrString(module, name);
    return v;
}

static int check_index(PyObject *module, const char *name, long expected) {
    PyObject *v = PyObject_GetAttrString(module, name);
    if (v == NULL)
        return -1;
    long got = PyLong_AsLong(v);
    Py_DECREF(v);
    if (got == -1 && PyErr_Occurred())
        return -1;
    if (got != expected) {
        PyErr_Format(PyExc_RuntimeError, "_tally: tally.%s is %ld, the C code has %ld: rebuild it", name, got,
                     expected);
        return -1;
    }
    return 0;
}

/* The reference module's constants, once. */
static int load_constants(void) {
    if (taken_type != NULL)
        return 0;
    PyObject *m = PyImport_ImportModule("genai_meter.collector_processor.metering.tally");
    if (m == NULL)
        return -1;
    PyObject *taken = NULL, *conv = NULL, *events = NULL, *keys = NULL;
    int rc = -1;
    if (check_index(m, "G_ENTRY", G_ENTRY) || check_index(m, "G_USED", G_USED) ||
        check_index(m, "G_CALLS", G_CALLS) || check_index(m, "G_TOKENS", G_TOKENS) ||
        check_index(m, "G_COSTS", G_COSTS) || check_index(m, "G_DUR_COUNTS", G_DUR_COUNTS) ||
        check_index(m, "G_DURS", G_DURS) || check_index(m, "G_TTFT_COUNTS", G_TTFT_COUNTS) ||
        check_index(m, "G_TTFTS", G_TTFTS) || check_index(m, "UNPRICED", UNPRICED) ||
        check_index(m, "MAX_CALL_NS", MAX_CALL_NS))
        goto done;
    if ((taken = module_attr(m, "Taken")) == NULL || (conv = module_attr(m, "CONVERSATION_OR_USER_KEYS")) == NULL ||
        (events = module_attr(m, "FIRST_TOKEN_EVENTS")) == NULL || (keys = module_attr(m, "TOKEN_KEYS")) == NULL)
        goto done;
    if (!PyType_Check(taken) || !PyType_IsSubtype((PyTypeObject *)taken, &PyTuple_Type) ||
        ((PyTypeObject *)taken)->tp_basicsize != PyTuple_Type.tp_basicsize ||
        ((PyTypeObject *)taken)->tp_itemsize != PyTuple_Type.tp_itemsize || !PyFrozenSet_CheckExact(conv) ||
        !PyFrozenSet_CheckExact(events) || !PyTuple_CheckExact(keys) || PyTuple_GET_SIZE(keys) != 5) {
        PyErr_SetString(PyExc_RuntimeError, "_tally: tally's Taken, key sets or TOKEN_KEYS changed: rebuild it");
        goto done;
    }
    for (int i = 0; i < 5; i++) {
        token_keys[i] = PyTuple_GET_ITEM(keys, i);
        Py_INCREF(token_keys[i]);
    }
    conversation_or_user = conv;
    first_token_events = events;
    taken_type = (PyTypeObject *)taken;
    conv = events = taken = NULL;
    rc = 0;
done:
    Py_DECREF(m);
    Py_XDECREF(taken);
    Py_XDECREF(conv);
    Py_XDECREF(events);
    Py_XDECREF(keys);
    return rc;
}

/* The bounds as doubles, when they are floats (or ints a double holds exactly): 0; else WHOLE. */
static int read_bounds(PyObject *bounds, double *out) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(bounds); i++) {
        PyObject *b = PyTuple_GET_ITEM(bounds, i);
        if (PyFloat_CheckExact(b))
            out[i] = PyFloat_AS_DOUBLE(b);
        else {
            int ok;
            int64_t v = exact_int64(b, &ok);
            if (!ok || v > ((int64_t)1 << 53) || v < -((int64_t)1 << 53))
                return WHOLE;
            out[i] = (double)v;
        }
    }
    return 0;
}

static PyObject *attr_of(PyObject *o, PyObject *name) { return PyObject_GetAttr(o, name); }

/* Read the tally's attributes (once per call): 0, WHOLE when the fast path does not model them, or ERR. */
static int run_ready(Run *R) {
    PyObject *t = R->tally, *conventions = NULL, *meter = NULL, *v = NULL, *dbounds = NULL, *tbounds = NULL;
    int rc = ERR;
    if ((R->templates = attr_of(t, str_templates)) == NULL || (conventions = attr_of(t, str_conventions)) == NULL ||
        (meter = attr_of(t, str_meter)) == NULL || (R->last = attr_of(conventions, str_last_resource)) == NULL ||
        (R->ids = attr_of(meter, str_resource_ids)) == NULL || (R->parents = attr_of(t, str_parents)) == NULL ||
        (R->groups = attr_of(t, str_groups)) == NULL || (R->group_index = attr_of(t, str_group_index)) == NULL ||
        (R->taken = attr_of(t, str_taken)) == NULL || (dbounds = attr_of(t, str_duration_bounds)) == NULL ||
        (tbounds = attr_of(t, str_ttft_bounds)) == NULL)
        goto done;
    rc = WHOLE;
    if (!PyDict_CheckExact(R->templates) || !PyTuple_CheckExact(R->last) || PyTuple_GET_SIZE(R->last) < 5 ||
        !PyTuple_CheckExact(R->ids) || PyTuple_GET_SIZE(R->ids) < 3 || !PyDict_CheckExact(R->parents) ||
        !PyList_CheckExact(R->groups) || !PyDict_CheckExact(R->group_index) || !PyList_CheckExact(R->taken) ||
        !PyTuple_CheckExact(dbounds) || !PyTuple_CheckExact(tbounds))
        goto done;
    R->last0 = PyTuple_GET_ITEM(R->last, 0);
    R->rkey = PyTuple_GET_ITEM(R->last, 4);
    R->ids0 = PyTuple_GET_ITEM(R->ids, 0);
    int b1 = PyObject_IsTrue(PyTuple_GET_ITEM(R->ids, 1));
    int b2 = b1 ? 1 : PyObject_IsTrue(PyTuple_GET_ITEM(R->ids, 2));
    if (b1 < 0 || b2 < 0) {
        rc = soft() == ERR ? ERR : WHOLE;
        goto done;
    }
    R->ids_blocked = b1 || b2;
    int ok;
    if ((v = attr_of(t, str_max_parents)) == NULL) {
        rc = ERR;
        goto done;
    }
    if (!PyLong_CheckExact(v))
        goto done;
    int overflow;
    long long mp = PyLong_AsLongLongAndOverflow(v, &overflow);
    R->max_parents = overflow > 0 ? INT64_MAX : overflow < 0 ? -1 : (int64_t)mp;
    Py_CLEAR(v);
    if ((v = attr_of(t, str_max_tokens)) == NULL) {
        rc = ERR;
        goto done;
    }
    R->max_tokens = exact_int64(v, &ok);
    if (!ok || R->max_tokens >= MAX_TOKENS_LIMIT || R->max_tokens <= -MAX_TOKENS_LIMIT)
        goto done;
    Py_CLEAR(v);
    if ((v = attr_of(t, str_weight_sampled)) == NULL) {
        rc = ERR;
        goto done;
    }
    R->weight_sampled = PyObject_IsTrue(v);
    if (R->weight_sampled < 0) {
        rc = soft() == ERR ? ERR : WHOLE;
        goto done;
    }
    R->nd = PyTuple_GET_SIZE(dbounds);
    R->nt = PyTuple_GET_SIZE(tbounds);
    R->bounds = PyMem_Malloc((size_t)(R->nd + R->nt + 1) * sizeof(double));
    if (R->bounds == NULL) {
        PyErr_NoMemory();
        rc = ERR;
        goto done;
    }
    if (read_bounds(dbounds, R->bounds) || read_bounds(tbounds, R->bounds + R->nd))
        goto done;
    R->ready = 1;
    rc = 0;
done:
    Py_XDECREF(conventions);
    Py_XDECREF(meter);
    Py_XDECREF(v);
    Py_XDECREF(dbounds);
    Py_XDECREF(tbounds);
    return rc;
}

/* ------------------------------------------------------------------------------------------------
 * Span fields: read from the slots of a span type whose fields are all plain slots; any other type's spans go
 * to the reference (its properties or __getattr__ could run Python code, in another order than the reference).
 */
/* Whether `type`'s fields are plain slots (their offsets in span_offsets). Looks nothing up that runs Python
 * code: the type's own MRO dicts, through _PyType_Lookup; cached for the last type while its version tag holds. */
static int span_type_check(PyTypeObject *type) {
    if (type == span_type && (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) && type->tp_version_tag == span_type_tag)
        return span_type_plain;
    Py_ssize_t offsets[S_N];
    int plain = Py_IS_TYPE(type, &PyType_Type) && type->tp_getattro == PyObject_GenericGetAttr;
    for (int i = 0; i < S_N && plain; i++) {
        PyObject *descr = _PyType_Lookup(type, span_fields[i]); /* borrowed; no exception set */
        plain = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type);
        if (plain) {
            PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
            plain = member->type == T_OBJECT_EX && !(member->flags & READ_RESTRICTED);
            offsets[i] = member->offset;
        }
    }
    Py_INCREF(type);
    Py_XSETREF(span_type, type);
    span_type_tag = (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) ? type->tp_version_tag : 0;
    span_type_plain = plain;
    if (plain)
        memcpy(span_offsets, offsets, sizeof(offsets));
    return plain;
}

/* ------------------------------------------------------------------------------------------------
 * Caches
 */
/* Whether the attribute keys `keys` include no conversation or user key: 1, 0, or -1 (an exception). */
static int disjoint_keys(PyObject *keys) {
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(keys); k++) {
        int r = PySet_Contains(conversation_or_user, PyTuple_GET_ITEM(keys, k));
        if (r)
            return r < 0 ? -1 : 0;
    }
    return 1;
}

/* The same key objects in the same order (the receiver's keys are interned). */
static int same_items(PyObject *a, PyObject *b) {
    Py_ssize_t n = PyTuple_GET_SIZE(a);
    if (n != PyTuple_GET_SIZE(b))
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyTuple_GET_ITEM(a, i) != PyTuple_GET_ITEM(b, i))
            return 0;
    return 1;
}

/* The plan's value keys and whether the key set it was first met with (`keys`) has no conversation or
 * user key: the PlanInfo's index, or <0 with *status set. */
static Py_ssize_t plan_info(Run *R, PyObject *plan, PyObject *keys, int *status) {
    Py_ssize_t i = map_get(&R->plan_map, plan, 0);
    if (i >= 0)
        return i;
    PyObject *template = PyObject_GetAttr(plan, str_template), *value_keys = NULL;
    if (template == NULL) {
        *status = soft();
        return -1;
    }
    if (template != Py_None) {
        value_keys = PyObject_GetAttr(template, str_value_keys);
        Py_DECREF(template);
        if (value_keys == NULL) {
            *status = soft();
            return -1;
        }
        if (!PyTuple_CheckExact(value_keys)) {
            Py_DECREF(value_keys);
            *status = SLOW;
            return -1;
        }
    } else
        Py_DECREF(template);
    int disjoint = disjoint_keys(keys);
    if (disjoint < 0) {
        Py_XDECREF(value_keys);
        *status = soft();
        return -1;
    }
    if (grow((void **)&R->plan_infos, &R->cap_plans, R->n_plans + 1, sizeof(PlanInfo)) < 0) {
        Py_XDECREF(value_keys);
        *status = ERR;
        return -1;
    }
    Py_ssize_t n = R->n_plans;
    if (map_put(&R->plan_map, plan, 0, n) < 0) {
        Py_XDECREF(value_keys);
        *status = ERR;
        return -1;
    }
    PlanInfo *p = &R->plan_infos[n];
    p->plan = plan;
    Py_INCREF(plan);
    p->keys = keys;
    Py_INCREF(keys);
    p->value_keys = value_keys;
    p->disjoint = disjoint;
    R->n_plans++;
    return n;
}

/* The entry's rates as `_price` reads them: the EntryInfo's index, or <0 with *status set. */
/* The entries' rates, across calls (entries are immutable; each is held, so its address is its own):
 * bounded, emptied when full. */
#define MAX_CACHED_ENTRIES 4096
static EntryInfo *cached_entries;
static Py_ssize_t n_cached_entries, cap_cached_entries;
static Map cached_entry_map;

static void clear_cached_entries(void) {
    Py_ssize_t n = n_cached_entries;
    EntryInfo *entries = cached_entries;
    Slot *slots = cached_entry_map.slots;
    cached_entries = NULL;
    n_cached_entries = cap_cached_entries = 0;
    memset(&cached_entry_map, 0, sizeof(cached_entry_map));
    for (Py_ssize_t i = 0; i < n; i++) { /* after the cache is empty: a decref may run Python code */
        Py_DECREF(entries[i].entry);
        Py_XDECREF(entries[i].fee);
    }
    PyMem_Free(entries);
    PyMem_Free(slots);
}

/* The entry's rates as `_price` reads them, copied to *out (the fee borrowed from the cache, which
 * holds it): 0, or -1 with *status set. */
static int entry_info(PyObject *entry, EntryInfo *out, int *status) {
    Py_ssize_t i = map_get(&cached_entry_map, entry, 0);
    if (i >= 0) {
        *out = cached_entries[i];
        return 0;
    }
    EntryInfo e;
    memset(&e, 0, sizeof(e));
    PyObject *plan = PyObject_GetAttr(entry, str_plan), *rates = NULL, *call = NULL, *one_hour = NULL;
    if (plan == NULL) {
        *status = soft();
        if (*status == ERR)
            return -1;
        e.slow = 1;
    } else if (plan != Py_None) {
        e.priced = 1;
        if ((rates = PyObject_GetAttr(entry, str_pico_rates)) == NULL ||
            (call = PyObject_GetAttr(entry, str_call)) == NULL ||
            (one_hour = PyObject_GetAttr(call, str_cache_write_1h)) == NULL) {
            *status = soft();
            if (*status == ERR)
                goto fail;
            e.slow = 1;
        } else if (!PyTuple_CheckExact(rates) || PyTuple_GET_SIZE(rates) < 19) {
            e.slow = 1;
        } else {
            int oh = PyObject_IsTrue(one_hour);
            if (oh < 0) {
                *status = soft();
                if (*status == ERR)
                    goto fail;
                e.slow = 1;
            }
            e.one_hour = oh > 0;
            for (int j = 0; j < 6 && !e.slow; j++) {
                PyObject *num = PyTuple_GET_ITEM(rates, 3 * j), *den = PyTuple_GET_ITEM(rates, 3 * j + 1),
                         *lim = PyTuple_GET_ITEM(rates, 3 * j + 2);
                if (!PyLong_CheckExact(num) || !PyLong_CheckExact(den) || !PyLong_CheckExact(lim)) {
                    e.slow = 1;
                    break;
                }
                int o1, o2, o3;
                long long n = PyLong_AsLongLongAndOverflow(num, &o1);
                long long d = PyLong_AsLongLongAndOverflow(den, &o2);
                long long l = PyLong_AsLongLongAndOverflow(lim, &o3);
                /* -2^63 < numerator < 2^63, 0 < denominator < 2^63 */
                e.in_range[j] = o1 == 0 && n != INT64_MIN && o2 == 0 && d > 0;
                e.num[j] = n;
                e.den[j] = d;
                e.lim[j] = o3 > 0 ? INT64_MAX : o3 < 0 ? INT64_MIN : l;
            }
            PyObject *fee = PyTuple_GET_ITEM(rates, 18);
            int ok;
            e.fee_v = exact_int64(fee, &ok);
            if (!ok)
                e.slow = 1;
            else {
                e.fee = fee;
                Py_INCREF(fee);
            }
        }
    }
    Py_XDECREF(plan);
    Py_XDECREF(rates);
    Py_XDECREF(call);
    Py_XDECREF(one_hour);
    if (n_cached_entries >= MAX_CACHED_ENTRIES)
        clear_cached_entries();
    if (grow((void **)&cached_entries, &cap_cached_entries, n_cached_entries + 1, sizeof(EntryInfo)) < 0 ||
        map_put(&cached_entry_map, entry, 0, n_cached_entries) < 0) {
        Py_XDECREF(e.fee);
        *status = ERR;
        return -1;
    }
    e.entry = entry;
    Py_INCREF(entry);
    cached_entries[n_cached_entries++] = e;
    *out = e;
    return 0;
fail:
    Py_XDECREF(plan);
    Py_XDECREF(rates);
    Py_XDECREF(call);
    Py_XDECREF(one_hour);
    return -1;
}

/* A new accumulator for group (entry, used), whose list is `group` and index `index` (borrowed; the
 * accumulator holds them, and the group's observed-value lists, from here on): its index in R->accs,
 * or -1 with an exception set. */
static Py_ssize_t add_acc(Run *R, PyObject *entry, int64_t used, PyObject *group, PyObject *index) {
    if (grow((void **)&R->accs, &R->cap_accs, R->n_accs + 1, sizeof(GroupAcc)) < 0)
        return -1;
    GroupAcc *a = &R->accs[R->n_accs];
    memset(a, 0, sizeof(*a));
    a->buckets = PyMem_Calloc((size_t)(R->nd + R->nt + 2), sizeof(int64_t));
    if (a->buckets == NULL || map_put(&R->acc_map, entry, used, R->n_accs) < 0) {
        PyMem_Free(a->buckets);
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return -1;
    }
    a->entry = Py_NewRef(entry);
    a->used = used;
    a->group = Py_NewRef(group);
    a->index = Py_NewRef(index);
    a->durs = Py_NewRef(PyList_GET_ITEM(group, G_DURS));
    a->ttfts = Py_NewRef(PyList_GET_ITEM(group, G_TTFTS));
    return R->n_accs++;
}

/* The group of an existing (entry, used) in group_index as an accumulator: its index; -1 when the group is
 * new (not in group_index); <-1 with *status set (SLOW: the group is not as _add makes them; ERR). */
static Py_ssize_t find_group(Run *R, PyObject *entry, int64_t used, int *status) {
    Py_ssize_t i = map_get(&R->acc_map, entry, used);
    if (i >= 0)
        return i;
    PyObject *used_obj = PyLong_FromLongLong(used);
    if (used_obj == NULL) {
        *status = ERR;
        return -2;
    }
    PyObject *key = PyTuple_Pack(2, entry, used_obj);
    Py_DECREF(used_obj);
    if (key == NULL) {
        *status = ERR;
        return -2;
    }
    PyObject *index = PyDict_GetItemWithError(R->group_index, key);
    Py_DECREF(key);
    if (index == NULL) {
        if (!PyErr_Occurred())
            return -1;
        *status = soft();
        return -2;
    }
    int ok;
    int64_t at = exact_int64(index, &ok);
    PyObject *group = ok && at >= 0 && at < PyList_GET_SIZE(R->groups) ? PyList_GET_ITEM(R->groups, at) : NULL;
    if (group == NULL || !PyList_CheckExact(group) || PyList_GET_SIZE(group) != G_LEN) {
        *status = SLOW;
        return -2;
    }
    PyObject *dc = PyList_GET_ITEM(group, G_DUR_COUNTS), *tc = PyList_GET_ITEM(group, G_TTFT_COUNTS);
    if (!PyList_CheckExact(dc) || PyList_GET_SIZE(dc) != R->nd + 1 || !PyList_CheckExact(tc) ||
        PyList_GET_SIZE(tc) != R->nt + 1 || !PyList_CheckExact(PyList_GET_ITEM(group, G_DURS)) ||
        !PyList_CheckExact(PyList_GET_ITEM(group, G_TTFTS))) {
        *status = SLOW;
        return -2;
    }
    Py_ssize_t acc = add_acc(R, entry, used, group, index);
    if (acc < 0)
        *status = ERR;
    return acc < 0 ? -2 : acc;
}

/* [0] * n */
static PyObject *zeros(Py_ssize_t n) {
    PyObject *list = PyList_New(n);
    if (list == NULL)
        return NULL;
    PyObject *zero = PyLong_FromLong(0);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(zero);
        PyList_SET_ITEM(list, i, zero);
    }
    Py_DECREF(zero);
    return list;
}

/* A new group as `_add` makes it (group_index, then groups); its accumulator's index, or -1 (error). */
static Py_ssize_t new_group(Run *R, PyObject *entry, int64_t used) {
    PyObject *group = PyList_New(G_LEN);
    if (group == NULL)
        return -1;
    PyObject *used_obj = PyLong_FromLongLong(used);
    if (used_obj == NULL) {
        Py_DECREF(group);
        return -1;
    }
    Py_INCREF(entry);
    PyList_SET_ITEM(group, G_ENTRY, entry);
    PyList_SET_ITEM(group, G_USED, used_obj);
    for (int i = G_CALLS; i < G_DUR_COUNTS; i++)
        PyList_SET_ITEM(group, i, PyLong_FromLong(0));
    PyObject *dc = zeros(R->nd + 1), *durs = PyList_New(0), *tc = zeros(R->nt + 1), *ttfts = PyList_New(0);
    PyObject *index = PyLong_FromSsize_t(PyList_GET_SIZE(R->groups));
    PyObject *key = PyTuple_Pack(2, entry, used_obj);
    if (dc == NULL || durs == NULL || tc == NULL || ttfts == NULL || index == NULL || key == NULL) {
        Py_XDECREF(dc);
        Py_XDECREF(durs);
        Py_XDECREF(tc);
        Py_XDECREF(ttfts);
        Py_XDECREF(index);
        Py_XDECREF(key);
        Py_DECREF(group);
        return -1;
    }
    PyList_SET_ITEM(group, G_DUR_COUNTS, dc);
    PyList_SET_ITEM(group, G_DURS, durs);
    PyList_SET_ITEM(group, G_TTFT_COUNTS, tc);
    PyList_SET_ITEM(group, G_TTFTS, ttfts);
    int rc = PyDict_SetItem(R->group_index, key, index);
    Py_DECREF(key);
    Py_ssize_t at = rc < 0 || PyList_Append(R->groups, group) < 0 ? -1 : add_acc(R, entry, used, group, index);
    Py_DECREF(index);
    Py_DECREF(group);
    return at;
}

/* list[i] += delta (the item held across the addition, which runs Python code for anything but an int) */
static int add_item(PyObject *list, Py_ssize_t i, PyObject *delta) {
    if (delta == NULL)
        return -1;
    if (i >= PyList_GET_SIZE(list)) {
        Py_DECREF(delta);
        PyErr_SetString(PyExc_RuntimeError, "_tally: a group changed during run");
        return -1;
    }
    PyObject *item = PyList_GET_ITEM(list, i);
    if (item == zero_int) /* 0 + delta is delta */
        return PyList_SetItem(list, i, delta);
    Py_INCREF(item);
    PyObject *sum = PyNumber_Add(item, delta);
    Py_DECREF(item);
    Py_DECREF(delta);
    if (sum == NULL)
        return -1;
    return PyList_SetItem(list, i, sum);
}

/* Add the accumulated sums to the groups' ints (and zero them). */
static int flush(Run *R) {
    for (Py_ssize_t k = 0; k < R->n_accs; k++) {
        GroupAcc *a = &R->accs[k];
        PyObject *g = a->group;
        if (a->calls) {
            if (add_item(g, G_CALLS, PyLong_FromLongLong(a->calls)) < 0)
                return -1;
            a->calls = 0;
        }
        for (int i = 0; i < 5; i++)
            if (a->tokens[i]) {
                if (add_item(g, G_TOKENS + i, long_from_i128(a->tokens[i])) < 0)
                    return -1;
                a->tokens[i] = 0;
            }
        for (int i = 0; i < 6; i++)
            if (a->costs[i]) {
                if (add_item(g, G_COSTS + i, long_from_i128(a->costs[i])) < 0)
                    return -1;
                a->costs[i] = 0;
            }
        for (int part = 0; part < 2; part++) {
            if (PyList_GET_SIZE(g) != G_LEN) {
                PyErr_SetString(PyExc_RuntimeError, "_tally: a group changed during run");
                return -1;
            }
            PyObject *counts = PyList_GET_ITEM(g, part ? G_TTFT_COUNTS : G_DUR_COUNTS);
            int64_t *b = a->buckets + (part ? R->nd + 1 : 0);
            Py_ssize_t n = part ? R->nt + 1 : R->nd + 1;
            if (!PyList_Check(counts) || PyList_GET_SIZE(counts) != n) {
                PyErr_SetString(PyExc_RuntimeError, "_tally: a group's bucket counts changed during run");
                return -1;
            }
            Py_INCREF(counts); /* held: an addition may run Python code, which could replace it in the group */
            for (Py_ssize_t i = 0; i < n; i++)
                if (b[i]) {
                    if (add_item(counts, i, PyLong_FromLongLong(b[i])) < 0) {
                        Py_DECREF(counts);
                        return -1;
                    }
                    b[i] = 0;
                }
            Py_DECREF(counts);
        }
    }
    return 0;
}

static Py_ssize_t bisect_left(const double *bounds, Py_ssize_t n, double x) {
    Py_ssize_t lo = 0, hi = n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (bounds[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* `orig` when it is the int `v`, else a new int. */
static PyObject *count_obj(int64_t v, PyObject *orig, int64_t orig_v) {
    if (orig != NULL && orig_v == v) {
        Py_INCREF(orig);
        return orig;
    }
    return PyLong_FromLongLong(v);
}

static PyObject *bytes_concat(PyObject *a, PyObject *b) {
    Py_ssize_t na = PyBytes_GET_SIZE(a), nb = PyBytes_GET_SIZE(b);
    PyObject *out = PyBytes_FromStringAndSize(NULL, na + nb);
    if (out == NULL)
        return NULL;
    memcpy(PyBytes_AS_STRING(out), PyBytes_AS_STRING(a), (size_t)na);
    memcpy(PyBytes_AS_STRING(out) + na, PyBytes_AS_STRING(b), (size_t)nb);
    return out;
}

/* ------------------------------------------------------------------------------------------------
 * One span: `Tally._take`.
 */
typedef struct {
    PyObject *f[S_N];     /* strong, NULL: not read */
    PyObject *counts[5];  /* strong: the token counts (None or absent: NULL) */
    PyObject *keys, *shape, *values, *key, *nested_key, *parent_key, *plan, *entry, *fee;
} SpanWork;

static void work_free(SpanWork *w) {
    for (int i = 0; i < S_N; i++)
        Py_XDECREF(w->f[i]);
    for (int i = 0; i < 5; i++)
        Py_XDECREF(w->counts[i]);
    Py_XDECREF(w->keys);
    Py_XDECREF(w->shape);
    Py_XDECREF(w->values);
    Py_XDECREF(w->key);
    Py_XDECREF(w->nested_key);
    Py_XDECREF(w->parent_key);
    Py_XDECREF(w->plan);
    Py_XDECREF(w->entry);
    Py_XDECREF(w->fee);
}

/* Field `i` of `span` (whose type passed span_type_check) into w->f[i], a strong reference; an unset slot goes
 * to the reference (which raises its AttributeError). */
#define FIELD(w, span, i)                                                                                    \
    do {                                                                                                     \
        if ((w)->f[i] == NULL) {                                                                             \
            PyObject *v_ = *(PyObject **)((char *)(span) + span_offsets[i]);                                 \
            if (v_ == NULL)                                                                                  \
                return SLOW;                                                                                 \
            (w)->f[i] = Py_NewRef(v_);                                                                       \
        }                                                                                                    \
    } while (0)

/* Whether hashing `v`, and comparing it with a value of these kinds, runs no Python code: None, a bool, an
 * exact int, float, str or bytes, a list or dict (unhashable: a TypeError before any item is looked at), or an
 * exact tuple of such values. */
static int plain_value(PyObject *v, int depth) {
    if (v == Py_None || PyBool_Check(v) || PyUnicode_CheckExact(v) || PyLong_CheckExact(v) || PyFloat_CheckExact(v) ||
        PyBytes_CheckExact(v) || PyList_CheckExact(v) || PyDict_CheckExact(v))
        return 1;
    if (!PyTuple_CheckExact(v) || depth >= MAX_PLAIN_DEPTH)
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(v); i++)
        if (!plain_value(PyTuple_GET_ITEM(v, i), depth + 1))
            return 0;
    return 1;
}

static int take(Run *R, PyObject *span, SpanWork *w) {
    if (!span_type_check(Py_TYPE(span)))
        return SLOW;
    FIELD(w, span, S_ATTRIBUTES);
    PyObject *attributes = w->f[S_ATTRIBUTES];
    if (!PyDict_CheckExact(attributes))
        return NOT_TAKEN;
    FIELD(w, span, S_SCOPE);
    if (!PyUnicode_CheckExact(w->f[S_SCOPE]))
        return SLOW; /* hashed with the keys below */
    /* plan = plans.get((span.scope_name, tuple(attributes))) */
    Py_ssize_t n = PyDict_GET_SIZE(attributes), pos = 0, k = 0;
    PyObject *key, *value, *plan;
    if (R->last_keys != NULL && w->f[S_SCOPE] == R->last_scope && n == PyTuple_GET_SIZE(R->last_keys)) {
        while (PyDict_Next(attributes, &pos, &key, &value) && key == PyTuple_GET_ITEM(R->last_keys, k))
            k++;
    }
    if (k == n && R->last_keys != NULL && w->f[S_SCOPE] == R->last_scope) { /* the same key objects */
        w->keys = R->last_keys;
        Py_INCREF(w->keys);
        plan = R->last_plan;
    } else {
        if ((w->keys = PyTuple_New(n)) == NULL)
            return ERR;
        pos = k = 0;
        while (k < n && PyDict_Next(attributes, &pos, &key, &value)) {
            Py_INCREF(key);
            PyTuple_SET_ITEM(w->keys, k++, key);
            if (!PyUnicode_CheckExact(key))
                return SLOW; /* hashed, and compared with the plans' keys: only exact str here */
        }
        if (k != n)
            return SLOW;
        if ((w->shape = PyTuple_Pack(2, w->f[S_SCOPE], w->keys)) == NULL)
            return ERR;
        plan = PyDict_GetItemWithError(R->plans, w->shape);
        if (plan == NULL && PyErr_Occurred())
            return soft();
        Py_INCREF(w->f[S_SCOPE]);
        Py_XSETREF(R->last_scope, w->f[S_SCOPE]);
        Py_INCREF(w->keys);
        Py_XSETREF(R->last_keys, w->keys);
        Py_XINCREF(plan);
        Py_XSETREF(R->last_plan, plan);
    }
    if (plan == NULL || plan == Py_None)
        return NOT_TAKEN;
    Py_INCREF(plan);
    w->plan = plan;
    if (!R->ready) {
        int rc = run_ready(R);
        if (rc)
            return rc;
    }
    int status = SLOW;
    Py_ssize_t pi = plan_info(R, plan, w->keys, &status);
    if (pi < 0)
        return status;
    PlanInfo *p = &R->plan_infos[pi];
    if (p->value_keys == NULL)
        return NOT_TAKEN;
    FIELD(w, span, S_RESOURCE);
    PyObject *resource = w->f[S_RESOURCE];
    if (R->last0 != resource || R->ids0 != resource || R->ids_blocked)
        return NOT_TAKEN;
    int disjoint = p->keys == w->keys || same_items(p->keys, w->keys) ? p->disjoint : disjoint_keys(w->keys);
    if (disjoint <= 0)
        return disjoint < 0 ? soft() : NOT_TAKEN;
    /* entry = templates.get((plan, last[4], span.is_error, tuple(map(attributes.get, value_keys)))) */
    FIELD(w, span, S_IS_ERROR);
    if (!PyBool_Check(w->f[S_IS_ERROR]))
        return SLOW;
    Py_ssize_t nv = PyTuple_GET_SIZE(p->value_keys);
    if ((w->values = PyTuple_New(nv)) == NULL)
        return ERR;
    for (Py_ssize_t i = 0; i < nv; i++) {
        PyObject *v = PyDict_GetItemWithError(attributes, PyTuple_GET_ITEM(p->value_keys, i));
        if (v == NULL) {
            if (PyErr_Occurred()) {
                if (PyErr_ExceptionMatches(PyExc_TypeError)) {
                    PyErr_Clear();
                    return NOT_TAKEN;
                }
                return soft();
            }
            v = Py_None;
        }
        Py_INCREF(v);
        PyTuple_SET_ITEM(w->values, i, v);
        if (!plain_value(v, 0))
            return SLOW;
    }
    if ((w->key = PyTuple_Pack(4, plan, R->rkey, w->f[S_IS_ERROR], w->values)) == NULL)
        return ERR;
    PyObject *entry = PyDict_GetItemWithError(R->templates, w->key);
    if (entry == NULL) {
        if (!PyErr_Occurred())
            return NOT_TAKEN;
        if (PyErr_ExceptionMatches(PyExc_TypeError)) { /* an unhashable value */
            PyErr_Clear();
            return NOT_TAKEN;
        }
        return soft();
    }
    Py_INCREF(entry);
    w->entry = entry;
    /* the five counts: None or an int in 0..max_tokens, held until the Taken tuple holds them */
    PyObject **count = w->counts;
    int64_t c[5];
    for (int i = 0; i < 5; i++) {
        PyObject *v = PyDict_GetItemWithError(attributes, token_keys[i]);
        if (v == NULL && PyErr_Occurred())
            return soft();
        if (v == NULL || v == Py_None) {
            c[i] = 0;
            continue;
        }
        int ok;
        c[i] = exact_int64(v, &ok);
        if (!ok || c[i] < 0 || c[i] > R->max_tokens)
            return NOT_TAKEN; /* not an int (or a bool), or out of 0..max_tokens (< 2^62) */
        count[i] = Py_NewRef(v);
    }
    if (R->weight_sampled) {
        FIELD(w, span, S_TRACE_STATE);
        if (!PyUnicode_CheckExact(w->f[S_TRACE_STATE]))
            return SLOW; /* its truth test could run Python code */
        if (PyUnicode_GET_LENGTH(w->f[S_TRACE_STATE]))
            return NOT_TAKEN;
    }
    /* split_counts(inp, out, cache_read, cache_write, reasoning, None, True, True) */
    int64_t out = c[1], cache_read = c[2], cache_write = c[3], reasoning = c[4];
    int64_t inp = count[0] != NULL ? c[0] : cache_read + cache_write;
    if (cache_read + cache_write > inp) {
        cache_read = cache_read < inp ? cache_read : inp;
        cache_write = cache_write < inp - cache_read ? cache_write : inp - cache_read;
    }
    int64_t tokens[5] = {inp - cache_read - cache_write, cache_read, cache_write, out, reasoning};
    if (reasoning) {
        if (reasoning > out)
            tokens[4] = reasoning = out;
        tokens[3] = out - reasoning;
    }
    /* _price */
    EntryInfo info;
    if (entry_info(entry, &info, &status) < 0)
        return status;
    EntryInfo *e = &info;
    Py_XINCREF(e->fee);
    w->fee = e->fee; /* held for this span: the cache may be emptied meanwhile */
    if (e->slow)
        return SLOW;
    int64_t used = UNPRICED, costs[6] = {0, 0, 0, 0, 0, 0};
    if (e->priced) {
        static const int triple[5] = {0, 1, 2, 4, 5};
        static const int bits[5] = {1, 2, 4, 8, 16};
        used = 0;
        costs[5] = e->fee_v;
        for (int i = 0; i < 5; i++) {
            int64_t t = tokens[i];
            if (!t)
                continue;
            int j = i == 2 && e->one_hour ? 3 : triple[i];
            used |= i == 2 && e->one_hour ? 36 : bits[i];
            if (!(t < e->lim[j]) || !e->in_range[j])
                return NOT_TAKEN;
            /* pico_cost: t * num / den rounded half-even, floor division */
            __int128 prod = (__int128)t * e->num[j], den = e->den[j];
            __int128 q = prod / den, r = prod % den;
            if (r < 0) {
                r += den;
                q -= 1;
            }
            r += r;
            if (r > den || (r == den && (q & 1)))
                q += 1;
            if (!(q > -(__int128)INT63_MAX - 1 && q < (__int128)INT63_MAX + 1) || q == INT64_MIN)
                return NOT_TAKEN;
            costs[i] = (int64_t)q;
        }
        /* the fee and the six classes' sum (list_cost) within -2^63 < x < 2^63, as each class */
        __int128 total = 0;
        for (int i = 0; i < 6; i++)
            total += costs[i];
        if (costs[5] == INT64_MIN || !(total > -(__int128)INT63_MAX - 1 && total < (__int128)INT63_MAX + 1))
            return NOT_TAKEN;
    }
    /* ids, times, events: what the reference reads after this point, checked before anything changes */
    FIELD(w, span, S_TRACE_ID);
    FIELD(w, span, S_SPAN_ID);
    FIELD(w, span, S_PARENT);
    PyObject *trace_id = w->f[S_TRACE_ID], *span_id = w->f[S_SPAN_ID], *parent = w->f[S_PARENT];
    if (!PyBytes_CheckExact(trace_id))
        return SLOW;
    int traced = PyBytes_GET_SIZE(trace_id) > 0;
    if (traced && (!PyBytes_CheckExact(span_id) || !PyBytes_CheckExact(parent)))
        return SLOW;
    FIELD(w, span, S_START);
    FIELD(w, span, S_END);
    FIELD(w, span, S_EVENTS);
    int ok_start, ok_end;
    int64_t start_ns = exact_int64(w->f[S_START], &ok_start), end_ns = exact_int64(w->f[S_END], &ok_end), elapsed;
    if (!ok_start || !ok_end || __builtin_sub_overflow(end_ns, start_ns, &elapsed))
        return SLOW;
    /* outside 0..MAX_CALL_NS: unknown (conventions.times) */
    double duration = elapsed > 0 && elapsed <= MAX_CALL_NS ? (double)elapsed / 1e9 : 0.0, ttft = 0.0;
    int has_ttft = 0;
    PyObject *events = w->f[S_EVENTS];
    if (!PyTuple_CheckExact(events) && !PyList_CheckExact(events))
        return SLOW;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(events); i++) {
        PyObject *event = PySequence_Fast_GET_ITEM(events, i);
        if (!PyTuple_CheckExact(event) || PyTuple_GET_SIZE(event) != 2 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(event, 0)))
            return SLOW; /* (an event name that is no exact str could run Python code in the set lookup) */
        Py_INCREF(event); /* held across the lookup: the events list could change meanwhile */
        int r = PySet_Contains(first_token_events, PyTuple_GET_ITEM(event, 0)), ok = 1;
        int64_t time_ns = 0, delta = 0;
        if (r > 0) {
            time_ns = exact_int64(PyTuple_GET_ITEM(event, 1), &ok);
            ok = ok && !__builtin_sub_overflow(time_ns, start_ns, &delta);
        }
        Py_DECREF(event);
        if (r < 0)
            return soft();
        if (r) {
            if (!ok)
                return SLOW;
            if (delta >= 0 && delta <= MAX_CALL_NS) { /* else unknown */
                has_ttft = 1;
                ttft = (double)delta / 1e9;
            }
            break;
        }
    }
    Py_ssize_t gi = find_group(R, entry, used, &status);
    if (gi < -1)
        return status;
    /* NestedCalls.check_and_note for a span that is not nested */
    PyObject *parents = R->parents;
    if (traced) {
        if ((w->nested_key = bytes_concat(trace_id, span_id)) == NULL)
            return ERR;
        int r = PyDict_Contains(parents, w->nested_key);
        if (r < 0)
            return ERR;
        if (r)
            return NOT_TAKEN;
        if (PyBytes_GET_SIZE(parent) > 0) {
            if ((w->parent_key = bytes_concat(trace_id, parent)) == NULL ||
                PyDict_SetItem(parents, w->parent_key, Py_None) < 0)
                return ERR;
            if (PyDict_GET_SIZE(parents) > R->max_parents) {
                Py_ssize_t at = 0;
                PyObject *oldest, *ignored;
                if (PyDict_Next(parents, &at, &oldest, &ignored)) {
                    Py_INCREF(oldest);
                    int rc = PyDict_DelItem(parents, oldest);
                    Py_DECREF(oldest);
                    if (rc < 0)
                        return ERR;
                }
            }
        }
    }
    if (gi < 0 && (gi = new_group(R, entry, used)) < 0)
        return ERR;
    GroupAcc *a = &R->accs[gi];
    a->calls++;
    for (int i = 0; i < 5; i++)
        a->tokens[i] += tokens[i];
    for (int i = 0; i < 6; i++)
        a->costs[i] += costs[i];
    a->buckets[bisect_left(R->bounds, R->nd, duration)]++;
    PyObject *tup = taken_type->tp_alloc(taken_type, 9);
    if (tup == NULL)
        return ERR;
    Py_INCREF(a->index);
    PyTuple_SET_ITEM(tup, 0, a->index);
    PyObject *tokens_obj = PyTuple_New(5), *costs_obj;
    if (tokens_obj == NULL) {
        Py_DECREF(tup);
        return ERR;
    }
    PyTuple_SET_ITEM(tup, 1, tokens_obj);
    /* input, cache_read, cache_write, output, reasoning from the counts (inp, out, cache_read, cache_write,
     * reasoning): the span's own int objects where the split left them as they were */
    static const int from[5] = {0, 2, 3, 1, 4};
    for (int i = 0; i < 5; i++) {
        PyObject *o = count_obj(tokens[i], count[from[i]], c[from[i]]);
        if (o == NULL) {
            Py_DECREF(tup);
            return ERR;
        }
        PyTuple_SET_ITEM(tokens_obj, i, o);
    }
    if (e->priced) {
        if ((costs_obj = PyTuple_New(6)) == NULL) {
            Py_DECREF(tup);
            return ERR;
        }
        PyTuple_SET_ITEM(tup, 2, costs_obj);
        for (int i = 0; i < 5; i++) {
            PyObject *o = PyLong_FromLongLong(costs[i]);
            if (o == NULL) {
                Py_DECREF(tup);
                return ERR;
            }
            PyTuple_SET_ITEM(costs_obj, i, o);
        }
        Py_INCREF(e->fee);
        PyTuple_SET_ITEM(costs_obj, 5, e->fee);
    } else {
        Py_INCREF(zero_costs);
        PyTuple_SET_ITEM(tup, 2, zero_costs);
    }
    PyObject *dur = PyFloat_FromDouble(duration);
    if (dur == NULL) {
        Py_DECREF(tup);
        return ERR;
    }
    PyTuple_SET_ITEM(tup, 3, dur);
    if (PyList_Append(a->durs, dur) < 0) {
        Py_DECREF(tup);
        return ERR;
    }
    if (has_ttft) {
        a->buckets[R->nd + 1 + bisect_left(R->bounds + R->nd, R->nt, ttft)]++;
        PyObject *t = PyFloat_FromDouble(ttft);
        if (t == NULL) {
            Py_DECREF(tup);
            return ERR;
        }
        PyTuple_SET_ITEM(tup, 4, t);
        if (PyList_Append(a->ttfts, t) < 0) {
            Py_DECREF(tup);
            return ERR;
        }
    } else {
        Py_INCREF(Py_None);
        PyTuple_SET_ITEM(tup, 4, Py_None);
    }
    PyObject *rest[4] = {w->f[S_END], trace_id, span_id, parent};
    for (int i = 0; i < 4; i++) {
        Py_INCREF(rest[i]);
        PyTuple_SET_ITEM(tup, 5 + i, rest[i]);
    }
    int rc = PyList_Append(R->taken, tup);
    Py_DECREF(tup);
    return rc < 0 ? ERR : TAKEN;
}

/* ------------------------------------------------------------------------------------------------
 * run(tally, spans, start)
 */
static PyObject *tally_run(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "run(tally, spans, start) takes 3 arguments");
        return NULL;
    }
    PyObject *tally = args[0], *spans = args[1];
    Py_ssize_t start = PyLong_CheckExact(args[2]) ? PyLong_AsSsize_t(args[2]) : -1;
    if (start == -1 && PyErr_Occurred()) { /* past Py_ssize_t: the reference says what that means */
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return NULL;
        PyErr_Clear();
    }
    if (load_constants() < 0)
        return NULL;
    if ((!PyList_CheckExact(spans) && !PyTuple_CheckExact(spans)) || start < 0)
        return PyObject_CallMethodObjArgs(tally, str_run_pure, spans, args[2], NULL);
    Run R;
    memset(&R, 0, sizeof(R));
    R.tally = tally;
    Py_INCREF(spans); /* holds the list while the reference runs for a span */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(spans), i = start;
    PyObject *result = NULL;
    if ((R.plans = PyObject_GetAttr(tally, str_plans)) == NULL)
        goto done;
    if (!PyDict_CheckExact(R.plans)) {
        result = PyObject_CallMethod(tally, "run_pure", "On", spans, start);
        goto done;
    }
    for (; i < n && i < PySequence_Fast_GET_SIZE(spans); i++) {
        PyObject *span = Py_NewRef(PySequence_Fast_GET_ITEM(spans, i));
        SpanWork w;
        memset(&w, 0, sizeof(w));
        int rc = take(&R, span, &w);
        work_free(&w);
        if (rc == SLOW) {
            PyObject *out = PyObject_CallMethodOneArg(tally, str_take, span);
            rc = out == NULL ? ERR : PyObject_IsTrue(out) > 0 ? TAKEN : NOT_TAKEN;
            if (out != NULL && PyErr_Occurred())
                rc = ERR;
            Py_XDECREF(out);
        }
        Py_DECREF(span);
        if (rc == ERR)
            goto done;
        if (rc == WHOLE) {
            if (flush(&R) < 0)
                goto done;
            result = PyObject_CallMethod(tally, "run_pure", "On", spans, i);
            goto done;
        }
        if (rc == NOT_TAKEN)
            break;
    }
    if (i > n)
        i = n;
    result = PyLong_FromSsize_t(i);
done:
    if (result == NULL) { /* keep what was counted so far, as the reference would have it */
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        if (flush(&R) < 0)
            PyErr_Clear();
        PyErr_Restore(type, value, tb);
    } else if (flush(&R) < 0)
        Py_CLEAR(result);
    run_free(&R);
    Py_DECREF(spans);
    return result;
}

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))tally_run, METH_FASTCALL,
     "run(tally, spans, start) -> int: Tally.run_pure in C (the index of the first span not taken)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_tally", "Tally.run in C: the optional accelerator of metering.tally.", -1, methods,
    NULL, NULL, NULL, NULL,
};

#define INTERN(var, text)                                                                                    \
    do {                                                                                                     \
        if ((var = PyUnicode_InternFromString(text)) == NULL)                                                \
            return NULL;                                                                                     \
    } while (0)

PyMODINIT_FUNC PyInit__tally(void) {
    for (int i = 0; i < S_N; i++)
        INTERN(span_fields[i], span_field_names[i]);
    INTERN(str_plans, "plans");
    INTERN(str_templates, "templates");
    INTERN(str_conventions, "conventions");
    INTERN(str_meter, "meter");
    INTERN(str_last_resource, "_last_resource");
    INTERN(str_resource_ids, "_resource_ids");
    INTERN(str_parents, "parents");
    INTERN(str_max_parents, "max_parents");
    INTERN(str_max_tokens, "max_tokens");
    INTERN(str_weight_sampled, "weight_sampled");
    INTERN(str_duration_bounds, "duration_bounds");
    INTERN(str_ttft_bounds, "ttft_bounds");
    INTERN(str_groups, "groups");
    INTERN(str_group_index, "group_index");
    INTERN(str_taken, "taken");
    INTERN(str_run_pure, "run_pure");
    INTERN(str_take, "_take");
    INTERN(str_template, "template");
    INTERN(str_value_keys, "value_keys");
    INTERN(str_plan, "plan");
    INTERN(str_pico_rates, "pico_rates");
    INTERN(str_call, "call");
    INTERN(str_cache_write_1h, "cache_write_1h");
    if ((zero_costs = Py_BuildValue("(iiiiii)", 0, 0, 0, 0, 0, 0)) == NULL || (zero_int = PyLong_FromLong(0)) == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}
