/*
 * _extract: the receiver's span extraction in C, the optional accelerator of spans.SpanExtractor.
 *
 * Scanner(markers, needles, record_type, fields, slow).scan(data, oldest, newest) walks a serialized
 * ExportTraceServiceRequest once and returns (received, not_candidate, rejected, candidates), `rejected`
 * the counts (invalid_id, end_time_out_of_range, end_time_in_future, too_old) of spans.SCAN_REJECTS: what
 * SpanExtractor.extract(parse_lean(data)) finds with the end-time bounds (oldest, newest) of
 * conventions.times.EndTimes.bounds (both within 0..2^63 - 1), for every body upb accepts. A candidate with
 * valid ids whose end time is above 2^63 - 1 is out of range, above `newest` in the future, below `oldest`
 * too old (in that order, as EndTimes.reason). It returns None when it
 * meets something it does not handle (groups, a 10-byte varint int value with bits past the 64th,
 * the key spans.attributes uses internally...), and never a partial result: the caller then takes
 * the pure path. A Python exception (out of memory, or raised by `slow`) propagates.
 *
 * What it reads is the lean schema (decode._LEAN), with the wire rules upb applies to it: the last
 * value of a scalar field wins, a singular sub-message given twice merges (its fields are read across
 * all its occurrences, in order), repeated fields concatenate, unknown fields (and known ones with
 * another wire type) are skipped. Every length and varint is bounds-checked against its enclosing
 * message; nesting is the schema's fixed depth (no recursion). It does not re-validate what upb
 * validated before it (UTF-8 of string fields of spans that are not candidates).
 *
 * Attributes follow spans.decode_key_value step by step: the common encodings (key, then one
 * string/int/double/bool value field) are decoded here; every other layout, and invalid UTF-8, goes
 * through `slow(raw: bytes) -> (key, value) | None` (the Python decoding), so results are identical.
 * `slow` must be a function of the bytes alone: its kept results are cached by raw bytes (bounded,
 * shared by all scanners), as spans._cache does.
 * Keys are interned; keys and short string values come from two bounded direct-mapped caches of
 * raw bytes -> str, shared by all scanners. The GIL is held throughout; no pointer into a cache is
 * kept across a call into Python code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Status of the internal steps. */
#define OK 0
#define ERR (-1)   /* a Python exception is set */
#define BAIL 1     /* not handled here: scan() returns None */
#define SLOW 2     /* (attribute decoding) the bytes are not valid UTF-8: ask `slow` */

#define N_FIELDS 12 /* SpanRecord's fields, in this order: */
enum { F_NAME, F_ATTRIBUTES, F_RESOURCE, F_START, F_END, F_IS_ERROR, F_SCOPE, F_TRACE_ID, F_SPAN_ID,
       F_PARENT, F_TRACE_STATE, F_EVENTS };

/* ------------------------------------------------------------------------------------------------
 * Wire format
 */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Buf;

typedef struct {
    uint32_t num;
    int wt;
    uint64_t u;          /* WT_VARINT, WT_I64, WT_I32 */
    const uint8_t *ptr;  /* WT_LEN: the payload */
    size_t len;
} Field;

/* A varint of at most 10 bytes at *pp, not read past `end`: 1 and *pp moved past it, or 0 (truncated
   or longer). `big` (may be NULL) tells whether the 10th byte had bits past the 64th, which
   spans._varint keeps and upb drops. */
static inline int
read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out, int *big)
{
    const uint8_t *p = *pp;
    uint64_t value = 0;
    for (int i = 0; i < 10 && p < end; i++) {
        uint8_t byte = *p++;
        value |= (uint64_t)(byte & 0x7F) << (7 * i);
        if (byte < 0x80) {
            if (big != NULL)
                *big = (i == 9 && byte > 1);
            *out = value;
            *pp = p;
            return 1;
        }
    }
    return 0;
}

static inline uint64_t
load_le(const uint8_t *p, int n)
{
    uint64_t value = 0;
    for (int i = n - 1; i >= 0; i--)
        value = (value << 8) | p[i];
    return value;
}

/* The next field of `b`: 1 (in *f), 0 at the end of the message, -1 when malformed or a group. */
static inline int
next_field(Buf *b, Field *f)
{
    uint64_t tag, n;
    f->u = 0;
    f->ptr = NULL;
    f->len = 0;
    if (b->p >= b->end)
        return 0;
    if (!read_varint(&b->p, b->end, &tag, NULL) || tag > 0xFFFFFFFFu || (tag >> 3) == 0)
        return -1;
    f->num = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    switch (f->wt) {
    case WT_VARINT:
        return read_varint(&b->p, b->end, &f->u, NULL) ? 1 : -1;
    case WT_I64:
    case WT_I32:
        n = f->wt == WT_I64 ? 8 : 4;
        if ((uint64_t)(b->end - b->p) < n)
            return -1;
        f->u = load_le(b->p, (int)n);
        b->p += n;
        return 1;
    case WT_LEN:
        if (!read_varint(&b->p, b->end, &n, NULL) || n > (uint64_t)(b->end - b->p))
            return -1;
        f->ptr = b->p;
        f->len = (size_t)n;
        b->p += n;
        return 1;
    default:
        return -1; /* groups (3, 4), invalid (6, 7) */
    }
}

/* OK when every field of the message [p, p+n) is well-formed (its sub-messages are not looked into). */
static int
check_message(const uint8_t *p, size_t n)
{
    Buf b = {p, p + n};
    Field f;
    int r;
    while ((r = next_field(&b, &f)) > 0)
        ;
    return r < 0 ? BAIL : OK;
}

/* ------------------------------------------------------------------------------------------------
 * Bytes -> str caches
 */

/* A 64-bit hash of [p, p+n) for the direct-mapped caches (not a security boundary: a collision only
   costs a decoding). The tail is one 8-byte load overlapping the bytes before it, or shifts when
   n < 8 (copying it byte by byte into a word would stall the load that follows). */
static inline uint64_t
hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    uint64_t w = 0;
    if (n >= 8) {
        const uint8_t *last = p + n - 8;
        for (; p < last; p += 8) {
            memcpy(&w, p, 8);
            h = (h ^ w) * 0xFF51AFD7ED558CCDull;
            h ^= h >> 32;
        }
        memcpy(&w, last, 8);
    }
    else {
        for (size_t i = 0; i < n; i++)
            w |= (uint64_t)p[i] << (8 * i);
    }
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 29);
}

/* memcmp(a, b, n) == 0 for the short strings of attributes, without a call */
static inline int
same_bytes(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    uint64_t u, v;
    for (; n >= 8; x += 8, y += 8, n -= 8) {
        memcpy(&u, x, 8);
        memcpy(&v, y, 8);
        if (u != v)
            return 0;
    }
    for (; n; n--)
        if (*x++ != *y++)
            return 0;
    return 1;
}

#define CACHE_MAX_LEN 64      /* longer strs are decoded every time */
#define KEY_SLOTS 1024        /* powers of two; small, so that the slots stay in the CPU's caches */
#define VALUE_SLOTS 1024

typedef struct {
    PyObject *str; /* owned; NULL when empty */
    uint64_t hash;
    size_t len;
    char bytes[CACHE_MAX_LEN];
} Slot;

static Slot key_cache[KEY_SLOTS];
static Slot value_cache[VALUE_SLOTS];

/* The str of the UTF-8 bytes [p, p+n) into *out (a new reference): OK, SLOW (not valid UTF-8, no
   exception set) or ERR. From the cache when it holds those bytes; keys are interned. */
static int
cached_str(Slot *cache, size_t slots, const uint8_t *p, size_t n, uint64_t hash, int intern, PyObject **out)
{
    Slot *slot = NULL;
    if (n <= CACHE_MAX_LEN) {
        slot = &cache[hash & (slots - 1)];
        if (slot->str != NULL && slot->hash == hash && slot->len == n && same_bytes(slot->bytes, p, n)) {
            *out = Py_NewRef(slot->str);
            return OK;
        }
    }
    PyObject *str = PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, NULL);
    if (str == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            return ERR;
        PyErr_Clear();
        return SLOW;
    }
    if (intern)
        PyUnicode_InternInPlace(&str);
    if (slot != NULL) {
        slot->hash = hash;
        slot->len = n;
        memcpy(slot->bytes, p, n);
        Py_XSETREF(slot->str, Py_NewRef(str)); /* last: the slot is whole before the old str goes */
    }
    *out = str;
    return OK;
}

static int
value_str(const uint8_t *p, size_t n, PyObject **out)
{
    if (n == 0) { /* also an absent field (p NULL) */
        *out = PyUnicode_New(0, 0);
        return *out == NULL ? ERR : OK;
    }
    return cached_str(value_cache, VALUE_SLOTS, p, n, hash_bytes(p, n), 0, out);
}

/* ------------------------------------------------------------------------------------------------
 * The scanner object
 */

#define MARKER_SLOTS 256 /* open addressing; at most half full */

typedef struct {
    PyObject_HEAD
    PyObject *markers;       /* frozenset[str] */
    PyObject *needles;       /* tuple[bytes, ...] */
    PyTypeObject *record_type;
    PyObject *descrs[N_FIELDS]; /* the member descriptors of record_type's fields */
    PyObject *slow;          /* callable(bytes) -> tuple[str, object] | None */
    PyObject *no_args;       /* () for record_type's tp_new */
    struct { uint64_t hash; Py_ssize_t len; const char *bytes; } marker_slots[MARKER_SLOTS];
} Scanner;

static PyObject *dropped_key; /* spans._DROP's key: a real key equal to it is left to the pure path */

static int
is_marker_bytes(Scanner *self, const uint8_t *p, size_t n, uint64_t hash)
{
    for (size_t i = hash & (MARKER_SLOTS - 1);; i = (i + 1) & (MARKER_SLOTS - 1)) {
        if (self->marker_slots[i].bytes == NULL)
            return 0;
        if (self->marker_slots[i].hash == hash && (size_t)self->marker_slots[i].len == n
                && same_bytes(self->marker_slots[i].bytes, p, n))
            return 1;
    }
}

static int
has_needle(Scanner *self, const uint8_t *hay, size_t n)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(self->needles); i++) {
        PyObject *needle = PyTuple_GET_ITEM(self->needles, i);
        size_t m = (size_t)PyBytes_GET_SIZE(needle);
        const char *s = PyBytes_AS_STRING(needle);
        if (m == 0)
            return 1;
        if (m > n)
            continue;
        const uint8_t *last = hay + n - m;
        for (const uint8_t *p = hay; p <= last; p++) {
            p = memchr(p, (unsigned char)s[0], (size_t)(last - p) + 1);
            if (p == NULL)
                break;
            if (memcmp(p, s, m) == 0)
                return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * Attributes
 */

typedef enum { A_DROP, A_STR, A_INT, A_DOUBLE, A_BOOL, A_SLOW } Kind;

typedef struct {
    Kind kind;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *val; /* A_STR: the UTF-8 bytes; A_DOUBLE: 8 bytes */
    size_t val_len;
    uint64_t u;         /* A_INT, A_BOOL */
    int big;            /* A_INT, A_BOOL: the varint had bits past the 64th */
} Attr;

/* The fast path of spans.decode_key_value, step for step, on one serialized KeyValue [p, end):
   A_SLOW wherever it goes to _decode_slow (an IndexError, an odd layout), A_DROP where it returns
   (key, None) -- dropped whatever the key (an invalid key makes _decode_slow return None). */
static void
parse_attr(const uint8_t *p, const uint8_t *end, Attr *a)
{
    uint64_t n;
    int big;
    a->kind = A_SLOW;
    if (p >= end || *p++ != 0x0A)
        return;
    if (!read_varint(&p, end, &n, &big) || big || n > (uint64_t)(end - p))
        return;
    a->key = p;
    a->key_len = (size_t)n;
    p += n;
    if (p == end) {
        a->kind = A_DROP;
        return;
    }
    if (*p++ != 0x12 || !read_varint(&p, end, &n, &big) || big || n != (uint64_t)(end - p))
        return;
    if (n == 0) {
        a->kind = A_DROP;
        return;
    }
    uint8_t tag = *p++;
    switch (tag) {
    case 0x0A: /* string_value */
        if (!read_varint(&p, end, &n, &big) || big || n != (uint64_t)(end - p))
            return;
        a->val = p;
        a->val_len = (size_t)n;
        a->kind = A_STR;
        return;
    case 0x18: /* int_value */
    case 0x10: /* bool_value */
        if (!read_varint(&p, end, &a->u, &a->big) || p != end)
            return;
        a->kind = tag == 0x18 ? A_INT : A_BOOL;
        return;
    case 0x21: /* double_value */
        if (end - p != 8)
            return;
        a->val = p;
        a->kind = A_DOUBLE;
        return;
    }
}

/* The value of a fast-path attribute (A_STR..A_BOOL) into *out: OK, SLOW (invalid UTF-8), BAIL (an
   int whose varint had bits past the 64th: spans._varint keeps them) or ERR. */
static int
make_value(const Attr *a, PyObject **out)
{
    switch (a->kind) {
    case A_STR:
        return value_str(a->val, a->val_len, out);
    case A_INT:
        if (a->big)
            return BAIL;
        *out = PyLong_FromLongLong((long long)(int64_t)a->u); /* two's complement */
        return *out == NULL ? ERR : OK;
    case A_DOUBLE: {
        double d = PyFloat_Unpack8((const char *)a->val, 1);
        if (d == -1.0 && PyErr_Occurred())
            return ERR;
        *out = PyFloat_FromDouble(d);
        return *out == NULL ? ERR : OK;
    }
    case A_BOOL:
        *out = Py_NewRef(a->u != 0 || a->big ? Py_True : Py_False);
        return OK;
    default:
        return BAIL;
    }
}

/* The kept results of `slow`, by raw bytes: the decoding is a function of the bytes alone, and the
   same odd attribute (an array such as finish_reasons) comes again and again. As spans._cache, it
   leaves out kvlist values (dicts, the one mutable kind) and what was left out. */
#define SLOW_MAX_LEN 128
#define SLOW_SLOTS 256

typedef struct {
    PyObject *pair; /* owned (interned key, value); NULL when empty */
    uint64_t hash;
    size_t len;
    char bytes[SLOW_MAX_LEN];
} SlowSlot;

static SlowSlot slow_cache[SLOW_SLOTS];

/* (key, value) of one raw attribute the Python way (`slow`), into *key / *value (new references, or
   both NULL when the attribute is left out): OK, BAIL or ERR. */
static int
decode_slow(Scanner *self, const uint8_t *raw, size_t n, PyObject **key, PyObject **value)
{
    SlowSlot *slot = NULL;
    uint64_t hash = 0;
    *key = *value = NULL;
    if (n <= SLOW_MAX_LEN) {
        hash = hash_bytes(raw, n);
        slot = &slow_cache[hash & (SLOW_SLOTS - 1)];
        if (slot->pair != NULL && slot->hash == hash && slot->len == n && same_bytes(slot->bytes, raw, n)) {
            *key = Py_NewRef(PyTuple_GET_ITEM(slot->pair, 0));
            *value = Py_NewRef(PyTuple_GET_ITEM(slot->pair, 1));
            return OK;
        }
    }
    PyObject *bytes = PyBytes_FromStringAndSize((const char *)raw, (Py_ssize_t)n);
    if (bytes == NULL)
        return ERR;
    PyObject *hit = PyObject_CallOneArg(self->slow, bytes);
    Py_DECREF(bytes);
    if (hit == NULL)
        return ERR;
    if (hit == Py_None) {
        Py_DECREF(hit);
        return OK;
    }
    if (!PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 2 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(hit, 0))) {
        Py_DECREF(hit);
        return BAIL;
    }
    if (PyTuple_GET_ITEM(hit, 1) != Py_None) {
        *key = Py_NewRef(PyTuple_GET_ITEM(hit, 0));
        *value = Py_NewRef(PyTuple_GET_ITEM(hit, 1));
        PyUnicode_InternInPlace(key);
    }
    Py_DECREF(hit);
    if (slot != NULL && *key != NULL && !PyDict_Check(*value)) {
        PyObject *pair = PyTuple_Pack(2, *key, *value);
        if (pair == NULL) {
            Py_CLEAR(*key);
            Py_CLEAR(*value);
            return ERR;
        }
        slot->hash = hash;
        slot->len = n;
        memcpy(slot->bytes, raw, n);
        Py_XSETREF(slot->pair, pair); /* last: the slot is whole before the old pair goes */
    }
    return OK;
}

/* One raw attribute into `attrs`, as spans.attributes does: a kept value is set (a key given again
   keeps its first position and takes the later value); empty and broken ones are left out. When
   `marker` is not NULL, *marker is set to 1 if the kept key is one of the markers. OK, BAIL or ERR. */
static int
add_attribute(Scanner *self, PyObject *attrs, const uint8_t *raw, size_t n, int *marker)
{
    Attr a;
    PyObject *key = NULL, *value = NULL;
    int st = SLOW, is_marker = 0;
    parse_attr(raw, raw + n, &a);
    if (a.kind == A_DROP)
        return OK;
    if (a.kind != A_SLOW) {
        if (a.key_len == 8 && memcmp(a.key, "\0dropped", 8) == 0)
            return BAIL;
        uint64_t hash = hash_bytes(a.key, a.key_len);
        st = cached_str(key_cache, KEY_SLOTS, a.key, a.key_len, hash, 1, &key);
        if (st == OK) {
            st = make_value(&a, &value);
            if (st != OK)
                Py_CLEAR(key);
        }
        if (st == ERR || st == BAIL)
            return st;
        if (st == OK && marker != NULL)
            is_marker = is_marker_bytes(self, a.key, a.key_len, hash);
    }
    if (st == SLOW) { /* an odd layout, or invalid UTF-8 */
        st = decode_slow(self, raw, n, &key, &value);
        if (st != OK || key == NULL)
            return st;
        if (PyUnicode_GET_LENGTH(key) == 8 && PyUnicode_Compare(key, dropped_key) == 0)
            st = BAIL;
        else if (marker != NULL && (is_marker = PySet_Contains(self->markers, key)) < 0)
            st = ERR;
        if (st != OK) {
            Py_DECREF(key);
            Py_DECREF(value);
            return st;
        }
    }
    st = PyDict_SetItem(attrs, key, value) < 0 ? ERR : OK;
    Py_DECREF(key);
    Py_DECREF(value);
    if (is_marker)
        *marker = 1;
    return st;
}

/* ------------------------------------------------------------------------------------------------
 * The request walk
 */

typedef struct {
    Scanner *self;
    uint64_t oldest, newest;     /* the end times accepted (EndTimes.bounds), both <= INT64_MAX */
    Py_ssize_t received, plain, invalid;
    Py_ssize_t out_of_range, in_future, too_old; /* candidates refused by their end time */
    PyObject *candidates;        /* list of records */
    const uint8_t *rs; size_t rs_len;  /* the ResourceSpans being walked */
    const uint8_t *ss; size_t ss_len;  /* the ScopeSpans being walked */
    PyObject *resource;          /* its resource dict, once a candidate needed it */
    PyObject *scope_name;        /* its scope name, once a candidate needed it */
} Walk;

/* The resource attributes of w->rs, across every `resource` occurrence (they merge). */
static int
build_resource(Walk *w)
{
    Buf rs = {w->rs, w->rs + w->rs_len}, res;
    Field f, g;
    int r, st = OK;
    PyObject *attrs = PyDict_New();
    if (attrs == NULL)
        return ERR;
    while (st == OK && (r = next_field(&rs, &f)) > 0) {
        if (f.num != 1 || f.wt != WT_LEN)
            continue;
        res = (Buf){f.ptr, f.ptr + f.len};
        while (st == OK && (r = next_field(&res, &g)) > 0)
            if (g.num == 1 && g.wt == WT_LEN)
                st = add_attribute(w->self, attrs, g.ptr, g.len, NULL);
        if (st == OK && r < 0)
            st = BAIL;
    }
    if (st == OK && r < 0)
        st = BAIL;
    if (st != OK) {
        Py_DECREF(attrs);
        return st;
    }
    w->resource = attrs;
    return OK;
}

/* The scope name of w->ss: the last `name` across every `scope` occurrence ("" when none). */
static int
build_scope_name(Walk *w)
{
    Buf ss = {w->ss, w->ss + w->ss_len}, scope;
    Field f, g;
    const uint8_t *name = NULL;
    size_t len = 0;
    int r;
    while ((r = next_field(&ss, &f)) > 0) {
        if (f.num != 1 || f.wt != WT_LEN)
            continue;
        scope = (Buf){f.ptr, f.ptr + f.len};
        while ((r = next_field(&scope, &g)) > 0)
            if (g.num == 1 && g.wt == WT_LEN) {
                name = g.ptr;
                len = g.len;
            }
        if (r < 0)
            return BAIL;
    }
    if (r < 0)
        return BAIL;
    int st = value_str(name, len, &w->scope_name);
    return st == SLOW ? BAIL : st;
}

#define MAX_ATTRS 64 /* attribute positions kept by pass 1; a span with more is walked again */

typedef struct {
    const uint8_t *ptr[N_FIELDS]; /* F_NAME, F_TRACE_ID, F_SPAN_ID, F_PARENT, F_TRACE_STATE: the last value */
    size_t len[N_FIELDS];
    uint64_t start, end;
    uint32_t code;                /* status.code, as int32 bits */
    Py_ssize_t events;
    int maybe;                    /* an attribute may make it a candidate */
    Py_ssize_t attrs;             /* attributes seen */
    const uint8_t *attr_ptr[MAX_ATTRS];
    size_t attr_len[MAX_ATTRS];
} SpanView;

/* Whether one raw attribute may give a marker key: a fast-path one whose key is a marker, or an
   odd one holding a needle (every marker has a dot, so its needle is in its key's bytes). */
static int
maybe_marker(Scanner *self, const uint8_t *raw, size_t n)
{
    Attr a;
    parse_attr(raw, raw + n, &a);
    if (a.kind == A_SLOW)
        return has_needle(self, raw, n);
    return a.kind != A_DROP && is_marker_bytes(self, a.key, a.key_len, hash_bytes(a.key, a.key_len));
}

/* Pass 1 over a span: its scalar fields (last wins), status code (merged), events counted and
   checked, and the screening of its attributes. OK or BAIL. */
static int
view_span(Scanner *self, const uint8_t *p, size_t n, SpanView *v)
{
    Buf b = {p, p + n}, sub;
    Field f, g;
    int r;
    memset(v, 0, offsetof(SpanView, attr_ptr));
    while ((r = next_field(&b, &f)) > 0) {
        int slot = -1;
        if (f.wt == WT_LEN) {
            switch (f.num) {
            case 1: slot = F_TRACE_ID; break;
            case 2: slot = F_SPAN_ID; break;
            case 3: slot = F_TRACE_STATE; break;
            case 4: slot = F_PARENT; break;
            case 5: slot = F_NAME; break;
            case 9:
                if (v->attrs < MAX_ATTRS) {
                    v->attr_ptr[v->attrs] = f.ptr;
                    v->attr_len[v->attrs] = f.len;
                }
                v->attrs++;
                if (!v->maybe)
                    v->maybe = maybe_marker(self, f.ptr, f.len);
                break;
            case 11:
                v->events++;
                if (check_message(f.ptr, f.len) != OK)
                    return BAIL;
                break;
            case 15:
                sub = (Buf){f.ptr, f.ptr + f.len};
                while ((r = next_field(&sub, &g)) > 0)
                    if (g.num == 3 && g.wt == WT_VARINT)
                        v->code = (uint32_t)g.u;
                if (r < 0)
                    return BAIL;
                break;
            }
            if (slot >= 0) {
                v->ptr[slot] = f.ptr;
                v->len[slot] = f.len;
            }
        }
        else if (f.wt == WT_I64 && f.num == 7)
            v->start = f.u;
        else if (f.wt == WT_I64 && f.num == 8)
            v->end = f.u;
    }
    return r < 0 ? BAIL : OK;
}

/* The events of a span as a tuple of (name, time) tuples (() when none): OK, BAIL or ERR. */
static int
build_events(const uint8_t *p, size_t n, Py_ssize_t count, PyObject **out)
{
    Buf b = {p, p + n}, ev;
    Field f, g;
    Py_ssize_t i = 0;
    int r;
    PyObject *events = PyTuple_New(count);
    if (events == NULL)
        return ERR;
    while ((r = next_field(&b, &f)) > 0 && i < count) {
        if (f.num != 11 || f.wt != WT_LEN)
            continue;
        const uint8_t *name = NULL;
        size_t len = 0;
        uint64_t time = 0;
        ev = (Buf){f.ptr, f.ptr + f.len};
        while ((r = next_field(&ev, &g)) > 0) {
            if (g.num == 1 && g.wt == WT_I64)
                time = g.u;
            else if (g.num == 2 && g.wt == WT_LEN) {
                name = g.ptr;
                len = g.len;
            }
        }
        PyObject *name_str = NULL, *time_int = NULL, *pair = NULL;
        int st = r < 0 ? BAIL : value_str(name, len, &name_str);
        if (st == OK && ((time_int = PyLong_FromUnsignedLongLong(time)) == NULL
                         || (pair = PyTuple_Pack(2, name_str, time_int)) == NULL))
            st = ERR;
        Py_XDECREF(name_str);
        Py_XDECREF(time_int);
        if (st != OK) {
            Py_DECREF(events);
            return st == SLOW ? BAIL : st;
        }
        PyTuple_SET_ITEM(events, i++, pair);
    }
    if (r < 0 || i != count) {
        Py_DECREF(events);
        return BAIL;
    }
    *out = events;
    return OK;
}

static int
all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* A record of `values` (borrowed), its fields set through their member descriptors. */
static PyObject *
make_record(Scanner *self, PyObject **values)
{
    PyTypeObject *type = self->record_type;
    PyObject *record = type->tp_new(type, self->no_args, NULL);
    if (record == NULL)
        return NULL;
    for (int i = 0; i < N_FIELDS; i++) {
        if (Py_TYPE(self->descrs[i])->tp_descr_set(self->descrs[i], record, values[i]) < 0) {
            Py_DECREF(record);
            return NULL;
        }
    }
    return record;
}

/* One span: counted; a candidate with valid ids appended as a record. OK, BAIL or ERR. */
static int
scan_span(Walk *w, const uint8_t *p, size_t n)
{
    Scanner *self = w->self;
    SpanView v;
    int st, marker = 0;
    w->received++;
    if ((st = view_span(self, p, n, &v)) != OK)
        return st;
    if (!v.maybe) {
        w->plain++;
        return OK;
    }
    PyObject *values[N_FIELDS] = {NULL};
    PyObject *attrs = values[F_ATTRIBUTES] = PyDict_New();
    if (attrs == NULL)
        return ERR;
    if (v.attrs <= MAX_ATTRS) {
        for (Py_ssize_t i = 0; st == OK && i < v.attrs; i++)
            st = add_attribute(self, attrs, v.attr_ptr[i], v.attr_len[i], &marker);
    }
    else {
        Buf b = {p, p + n};
        Field f;
        while (st == OK && next_field(&b, &f) > 0)
            if (f.num == 9 && f.wt == WT_LEN)
                st = add_attribute(self, attrs, f.ptr, f.len, &marker);
    }
    if (st != OK || !marker) {
        w->plain += st == OK;
        goto done;
    }
    if (v.len[F_TRACE_ID] != 16 || v.len[F_SPAN_ID] != 8 || all_zero(v.ptr[F_TRACE_ID], 16)
            || all_zero(v.ptr[F_SPAN_ID], 8)) {
        w->invalid++;
        goto done;
    }
    if (v.end < w->oldest || v.end > w->newest) { /* EndTimes.reason, in its order */
        if (v.end > (uint64_t)INT64_MAX)
            w->out_of_range++;
        else if (v.end > w->newest)
            w->in_future++;
        else
            w->too_old++;
        goto done;
    }
    if (w->resource == NULL && (st = build_resource(w)) != OK)
        goto done;
    if (w->scope_name == NULL && (st = build_scope_name(w)) != OK)
        goto done;
    values[F_RESOURCE] = Py_NewRef(w->resource);
    values[F_SCOPE] = Py_NewRef(w->scope_name);
    if ((st = value_str(v.ptr[F_NAME], v.len[F_NAME], &values[F_NAME])) != OK
            || (st = value_str(v.ptr[F_TRACE_STATE], v.len[F_TRACE_STATE], &values[F_TRACE_STATE])) != OK) {
        st = st == SLOW ? BAIL : st;
        goto done;
    }
    st = ERR;
    if ((values[F_START] = PyLong_FromUnsignedLongLong(v.start)) == NULL
            || (values[F_END] = PyLong_FromUnsignedLongLong(v.end)) == NULL
            || (values[F_TRACE_ID] = PyBytes_FromStringAndSize((const char *)v.ptr[F_TRACE_ID], 16)) == NULL
            || (values[F_SPAN_ID] = PyBytes_FromStringAndSize((const char *)v.ptr[F_SPAN_ID], 8)) == NULL
            || (values[F_PARENT] = PyBytes_FromStringAndSize((const char *)v.ptr[F_PARENT],
                                                             (Py_ssize_t)v.len[F_PARENT])) == NULL)
        goto done;
    values[F_IS_ERROR] = Py_NewRef(v.code == 2 ? Py_True : Py_False);
    if (v.events == 0)
        values[F_EVENTS] = PyTuple_New(0); /* the empty tuple */
    else if ((st = build_events(p, n, v.events, &values[F_EVENTS])) != OK)
        goto done;
    if (values[F_EVENTS] == NULL) {
        st = ERR;
        goto done;
    }
    PyObject *record = make_record(self, values);
    st = record == NULL || PyList_Append(w->candidates, record) < 0 ? ERR : OK;
    Py_XDECREF(record);
done:
    for (int i = 0; i < N_FIELDS; i++)
        Py_XDECREF(values[i]);
    return st;
}

static int
scan_scope_spans(Walk *w, const uint8_t *p, size_t n)
{
    Buf b = {p, p + n};
    Field f;
    int r, st = OK;
    w->ss = p;
    w->ss_len = n;
    while (st == OK && (r = next_field(&b, &f)) > 0) {
        if (f.num == 2 && f.wt == WT_LEN)
            st = scan_span(w, f.ptr, f.len);
        else if (f.num == 1 && f.wt == WT_LEN)
            st = check_message(f.ptr, f.len);
    }
    Py_CLEAR(w->scope_name);
    return st != OK ? st : r < 0 ? BAIL : OK;
}

static int
scan_resource_spans(Walk *w, const uint8_t *p, size_t n)
{
    Buf b = {p, p + n};
    Field f;
    int r, st = OK;
    w->rs = p;
    w->rs_len = n;
    while (st == OK && (r = next_field(&b, &f)) > 0) {
        if (f.num == 2 && f.wt == WT_LEN)
            st = scan_scope_spans(w, f.ptr, f.len);
        else if (f.num == 1 && f.wt == WT_LEN)
            st = check_message(f.ptr, f.len);
    }
    Py_CLEAR(w->resource);
    return st != OK ? st : r < 0 ? BAIL : OK;
}

PyDoc_STRVAR(scan_doc,
"scan(data: bytes, oldest: int, newest: int) -> tuple[int, int, tuple[int, int, int, int], list] | None\n\n"
"(received, not_candidate, rejected counts, candidates) of a serialized ExportTraceServiceRequest, as\n"
"SpanExtractor.extract finds them on its lean parse with the end-time bounds (oldest, newest); None when\n"
"something here is not handled.");

static PyObject *
Scanner_scan(Scanner *self, PyObject *data, long long oldest, long long newest)
{
    if (!PyBytes_CheckExact(data)) {
        PyErr_SetString(PyExc_TypeError, "scan() takes bytes");
        return NULL;
    }
    if (oldest < 0 || newest < 0) {
        PyErr_SetString(PyExc_ValueError, "scan(): the end-time bounds are within 0..2^63 - 1");
        return NULL;
    }
    const uint8_t *p = (const uint8_t *)PyBytes_AS_STRING(data);
    Walk w = {self, (uint64_t)oldest, (uint64_t)newest, 0, 0, 0, 0, 0, 0, PyList_New(0), NULL, 0, NULL, 0, NULL, NULL};
    if (w.candidates == NULL)
        return NULL;
    Buf b = {p, p + PyBytes_GET_SIZE(data)};
    Field f;
    int r, st = OK;
    while (st == OK && (r = next_field(&b, &f)) > 0)
        if (f.num == 1 && f.wt == WT_LEN)
            st = scan_resource_spans(&w, f.ptr, f.len);
    if (st == OK && r < 0)
        st = BAIL;
    if (st != OK) {
        Py_DECREF(w.candidates);
        if (st == ERR)
            return NULL;
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(nn(nnnn)N)", w.received, w.plain, w.invalid, w.out_of_range, w.in_future, w.too_old,
                         w.candidates);
}

/* ------------------------------------------------------------------------------------------------
 * Scanner type
 */

static int
Scanner_init(Scanner *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"markers", "needles", "record_type", "fields", "slow", NULL};
    PyObject *markers, *needles, *record_type, *fields, *slow;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!O!O!O:Scanner", kwlist, &PyFrozenSet_Type, &markers,
                                     &PyTuple_Type, &needles, &PyType_Type, &record_type, &PyTuple_Type, &fields,
                                     &slow))
        return -1;
    if (self->markers != NULL) {
        PyErr_SetString(PyExc_TypeError, "Scanner is initialized once");
        return -1;
    }
    if (!PyCallable_Check(slow) || PyTuple_GET_SIZE(fields) != N_FIELDS || PySet_GET_SIZE(markers) > MARKER_SLOTS / 2) {
        PyErr_SetString(PyExc_ValueError, "Scanner needs a callable slow, 12 fields and at most 128 markers");
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(needles); i++)
        if (!PyBytes_CheckExact(PyTuple_GET_ITEM(needles, i))) {
            PyErr_SetString(PyExc_TypeError, "needles must be bytes");
            return -1;
        }
    for (int i = 0; i < N_FIELDS; i++) {
        PyObject *descr = PyObject_GetAttr(record_type, PyTuple_GET_ITEM(fields, i));
        if (descr == NULL)
            return -1;
        Py_XSETREF(self->descrs[i], descr);
        if (!Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            PyErr_SetString(PyExc_TypeError, "record_type's fields must be slots");
            return -1;
        }
    }
    memset(self->marker_slots, 0, sizeof(self->marker_slots));
    PyObject *iter = PyObject_GetIter(markers), *marker;
    if (iter == NULL)
        return -1;
    while ((marker = PyIter_Next(iter)) != NULL) {
        Py_ssize_t len;
        const char *bytes = PyUnicode_CheckExact(marker) ? PyUnicode_AsUTF8AndSize(marker, &len) : NULL;
        Py_DECREF(marker); /* still held by the frozenset */
        if (bytes == NULL) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "markers must be str");
            Py_DECREF(iter);
            return -1;
        }
        uint64_t hash = hash_bytes((const uint8_t *)bytes, (size_t)len);
        size_t i = hash & (MARKER_SLOTS - 1);
        while (self->marker_slots[i].bytes != NULL)
            i = (i + 1) & (MARKER_SLOTS - 1);
        self->marker_slots[i].hash = hash;
        self->marker_slots[i].len = len;
        self->marker_slots[i].bytes = bytes; /* lives as long as the str, held by self->markers */
    }
    Py_DECREF(iter);
    if (PyErr_Occurred())
        return -1;
    Py_XSETREF(self->no_args, PyTuple_New(0));
    if (self->no_args == NULL)
        return -1;
    self->markers = Py_NewRef(markers);
    self->needles = Py_NewRef(needles);
    self->record_type = (PyTypeObject *)Py_NewRef(record_type);
    self->slow = Py_NewRef(slow);
    return 0;
}

static int
Scanner_traverse(Scanner *self, visitproc visit, void *arg)
{
    Py_VISIT(self->markers);
    Py_VISIT(self->needles);
    Py_VISIT(self->record_type);
    Py_VISIT(self->slow);
    for (int i = 0; i < N_FIELDS; i++)
        Py_VISIT(self->descrs[i]);
    return 0;
}

static int
Scanner_clear(Scanner *self)
{
    memset(self->marker_slots, 0, sizeof(self->marker_slots));
    Py_CLEAR(self->markers);
    Py_CLEAR(self->needles);
    Py_CLEAR(self->record_type);
    Py_CLEAR(self->slow);
    Py_CLEAR(self->no_args);
    for (int i = 0; i < N_FIELDS; i++)
        Py_CLEAR(self->descrs[i]);
    return 0;
}

static void
Scanner_dealloc(Scanner *self)
{
    PyObject_GC_UnTrack(self);
    Scanner_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Scanner_scan_checked(Scanner *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (self->markers == NULL) {
        PyErr_SetString(PyExc_TypeError, "Scanner is not initialized");
        return NULL;
    }
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "scan(data, oldest, newest) takes 3 arguments");
        return NULL;
    }
    long long oldest = PyLong_AsLongLong(args[1]), newest;
    if (oldest == -1 && PyErr_Occurred())
        return NULL;
    newest = PyLong_AsLongLong(args[2]);
    if (newest == -1 && PyErr_Occurred())
        return NULL;
    return Scanner_scan(self, args[0], oldest, newest);
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))Scanner_scan_checked, METH_FASTCALL, scan_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "genai_meter.collector_processor.receiver._extract.Scanner",
    .tp_doc = PyDoc_STR("Scanner(markers, needles, record_type, fields, slow): see the module's docstring."),
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_traverse = (traverseproc)Scanner_traverse,
    .tp_clear = (inquiry)Scanner_clear,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

static struct PyModuleDef extract_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "genai_meter.collector_processor.receiver._extract",
    .m_doc = PyDoc_STR("The receiver's span extraction in C (the optional accelerator of spans.SpanExtractor)."),
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__extract(void)
{
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    if (dropped_key == NULL && (dropped_key = PyUnicode_FromStringAndSize("\0dropped", 8)) == NULL)
        return NULL;
    PyObject *module = PyModule_Create(&extract_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
