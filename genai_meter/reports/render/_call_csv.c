/*
 * _call_csv: `format_rows`, the optional C accelerator of call_csv.format_rows_pure (the reference).
 *
 * format_rows(rows, labels, prices, units, label_miss, price_miss, field) -> bytes takes the same arguments
 * and returns the same UTF-8 bytes: one CSV line per row of RECORD_COLUMNS (a list of 22-tuples). Label sets
 * and prices are looked up in the dicts `labels` / `prices` (rendered cells by id); a missing id is rendered
 * by `label_miss(id)` / `price_miss(id)` and stored in the dict, as the reference does. A conversation or user
 * cell that may need neutralising or quoting (it starts with one of =+-@ TAB CR LF, or holds , " CR LF) is
 * rendered by `field(text)`; any other is copied as it is. `units` maps (end_ns, trace_id, span_id) to the
 * rendered units of a call (units cell, unit cost, unpriced-units cell, partly priced).
 *
 * Numbers are formatted as Python does: the time as `iso` (UTC, seconds, the fraction without trailing
 * zeros), ids as lowercase hex, tokens as decimal, money as `usd12` (sums in 128 bits), the duration as
 * f"{us / 1_000_000:.6f}" (the same double: exact division of an int of at most 53 bits, else Python's own
 * true division; the same text: PyOS_double_to_string). The exactness words follow contract.py
 * (NO_USAGE and CACHE_UNKNOWN below, checked against it by the tests).
 *
 * A value of a type or size the ledger never stores (not an int, not bytes, not str, an int past 64 bits)
 * raises TypeError or OverflowError and nothing is returned: the caller formats the page with the reference.
 * Objects are held by strong references while used: rows, dict values and callback results survive any code
 * the callbacks run; the buffer is freed on every path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#include "_flat_json.h"

#define N_COLUMNS 22
enum { C_END, C_TRACE, C_SPAN, C_LABELSET, C_CONVERSATION, C_USER, C_DURATION, C_T0, C_C0 = C_T0 + 5,
       C_PRICE = C_C0 + 6, C_UNPRICED, C_UNMETERED, C_INVALID };

static const char NO_USAGE[] = "no_usage";
static const char CACHE_UNKNOWN[] = "cache_unknown";

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t more) {
    if (b->len + more <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + more) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static int put(Buf *b, const char *s, Py_ssize_t n) {
    if (n == 0) /* nothing to copy (and memcpy takes no NULL buffer, even for 0 bytes) */
        return 0;
    if (buf_reserve(b, n) < 0)
        return -1;
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static int put_char(Buf *b, char c) { return put(b, &c, 1); }

/* A str's UTF-8 bytes (TypeError for anything but a str). */
static int put_str(Buf *b, PyObject *s) {
    if (!PyUnicode_Check(s)) {
        PyErr_SetString(PyExc_TypeError, "format_rows: a text cell is not a str");
        return -1;
    }
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    return u == NULL ? -1 : put(b, u, n);
}

static int put_u64(Buf *b, unsigned long long v) {
    char tmp[24];
    int i = 24;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(b, tmp + i, 24 - i);
}

static int put_i64(Buf *b, long long v) {
    if (v < 0) {
        if (put_char(b, '-') < 0)
            return -1;
        return put_u64(b, (unsigned long long)0 - (unsigned long long)v);
    }
    return put_u64(b, (unsigned long long)v);
}

/* `usd12`: sign, whole dollars, 12 decimals. */
static int put_usd12(Buf *b, __int128 pico) {
    unsigned __int128 a = pico < 0 ? (unsigned __int128)0 - (unsigned __int128)pico : (unsigned __int128)pico;
    unsigned __int128 whole = a / 1000000000000ULL;
    unsigned long long frac = (unsigned long long)(a % 1000000000000ULL);
    if (pico < 0 && put_char(b, '-') < 0)
        return -1;
    char tmp[48];
    int i = 48;
    do {
        tmp[--i] = (char)('0' + (int)(whole % 10));
        whole /= 10;
    } while (whole);
    if (put(b, tmp + i, 48 - i) < 0 || put_char(b, '.') < 0)
        return -1;
    char f[12];
    for (int k = 11; k >= 0; k--) {
        f[k] = (char)('0' + frac % 10);
        frac /= 10;
    }
    return put(b, f, 12);
}

/* An exact int of at most 64 bits (TypeError / OverflowError otherwise). */
static int as_i64(PyObject *o, long long *out) {
    if (!PyLong_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "format_rows: a number cell is not an int");
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow) {
        PyErr_SetString(PyExc_OverflowError, "format_rows: an int past 64 bits");
        return -1;
    }
    if (v == -1 && PyErr_Occurred())
        return -1;
    *out = v;
    return 0;
}

static const char HEX[] = "0123456789abcdef";

static int put_hex(Buf *b, PyObject *o) {
    if (!PyBytes_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "format_rows: an id is not bytes");
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(o);
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(o);
    if (buf_reserve(b, 2 * n) < 0)
        return -1;
    char *d = b->data + b->len;
    for (Py_ssize_t i = 0; i < n; i++) {
        d[2 * i] = HEX[s[i] >> 4];
        d[2 * i + 1] = HEX[s[i] & 15];
    }
    b->len += 2 * n;
    return 0;
}

static int put_2(char *d, int v) {
    d[0] = (char)('0' + v / 10);
    d[1] = (char)('0' + v % 10);
    return 2;
}

/* `iso(ns)`: RFC 3339 UTC, the fraction without trailing zeros (years 1677..2262 for 64-bit ns: 4 digits). */
static int put_time(Buf *b, long long ns) {
    long long seconds = ns / 1000000000LL, rest = ns % 1000000000LL;
    if (rest < 0) {
        rest += 1000000000LL;
        seconds -= 1;
    }
    long long days = seconds / 86400, sod = seconds % 86400;
    if (sod < 0) {
        sod += 86400;
        days -= 1;
    }
    /* civil_from_days (H. Hinnant): days since 1970-01-01 -> year, month, day */
    long long z = days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = yoe + era * 400;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    if (m <= 2)
        y += 1;
    char t[32];
    int i = 0;
    int year = (int)y;
    t[i++] = (char)('0' + year / 1000 % 10);
    t[i++] = (char)('0' + year / 100 % 10);
    t[i++] = (char)('0' + year / 10 % 10);
    t[i++] = (char)('0' + year % 10);
    t[i++] = '-';
    i += put_2(t + i, m);
    t[i++] = '-';
    i += put_2(t + i, d);
    t[i++] = 'T';
    i += put_2(t + i, (int)(sod / 3600));
    t[i++] = ':';
    i += put_2(t + i, (int)(sod / 60 % 60));
    t[i++] = ':';
    i += put_2(t + i, (int)(sod % 60));
    if (rest) {
        char f[9];
        for (int k = 8; k >= 0; k--) {
            f[k] = (char)('0' + rest % 10);
            rest /= 10;
        }
        int n = 9;
        while (f[n - 1] == '0')
            n--;
        t[i++] = '.';
        memcpy(t + i, f, (size_t)n);
        i += n;
    }
    t[i++] = 'Z';
    return put(b, t, i);
}

/* f"{us / 1_000_000:.6f}" */
static int put_duration(Buf *b, PyObject *o) {
    long long us;
    double value;
    if (as_i64(o, &us) < 0)
        return -1;
    if (us <= (1LL << 53) && us >= -(1LL << 53)) {
        value = (double)us / 1e6;
    } else {
        PyObject *million = PyLong_FromLong(1000000);
        if (million == NULL)
            return -1;
        PyObject *q = PyNumber_TrueDivide(o, million);
        Py_DECREF(million);
        if (q == NULL)
            return -1;
        value = PyFloat_AsDouble(q);
        Py_DECREF(q);
        if (value == -1.0 && PyErr_Occurred())
            return -1;
    }
    char *text = PyOS_double_to_string(value, 'f', 6, 0, NULL);
    if (text == NULL)
        return -1;
    int rc = put(b, text, (Py_ssize_t)strlen(text));
    PyMem_Free(text);
    return rc;
}

/* A text cell from its UTF-8 (`text`: its str, or NULL): as it is, or through `field` when it may need
 * neutralising or quoting. */
static int put_cell_utf8(Buf *b, const char *u, Py_ssize_t n, PyObject *text, PyObject *field) {
    int plain = n == 0 || strchr("=+-@\t\r\n", u[0]) == NULL;
    for (Py_ssize_t i = 0; plain && i < n; i++) {
        char c = u[i];
        if (c == ',' || c == '"' || c == '\r' || c == '\n')
            plain = 0;
    }
    if (plain)
        return put(b, u, n);
    PyObject *made = text == NULL ? PyUnicode_DecodeUTF8(u, n, "strict") : NULL;
    if (text == NULL && made == NULL)
        return -1;
    PyObject *cell = PyObject_CallOneArg(field, text == NULL ? made : text);
    Py_XDECREF(made);
    if (cell == NULL)
        return -1;
    int rc = put_str(b, cell);
    Py_DECREF(cell);
    return rc;
}

/* A conversation or user cell: as it is, or through `field` when it may need neutralising or quoting. */
static int put_cell(Buf *b, PyObject *text, PyObject *field) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "format_rows: a text cell is not a str");
        return -1;
    }
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(text, &n);
    return u == NULL ? -1 : put_cell_utf8(b, u, n, text, field);
}

/* The cached value of `key` in `cache`, else `miss(key)` stored there: a new reference, NULL on error. */
static PyObject *cached(PyObject *cache, PyObject *key, PyObject *miss) {
    PyObject *found = PyDict_GetItemWithError(cache, key);
    if (found != NULL) {
        Py_INCREF(found);
        return found;
    }
    if (PyErr_Occurred())
        return NULL;
    found = PyObject_CallOneArg(miss, key);
    if (found == NULL)
        return NULL;
    if (PyDict_SetItem(cache, key, found) < 0) {
        Py_DECREF(found);
        return NULL;
    }
    return found;
}

static int str_equals(PyObject *s, const char *want) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    if (u == NULL)
        return -1;
    return (size_t)n == strlen(want) && memcmp(u, want, (size_t)n) == 0;
}

/* One row; 0 or -1 with an exception set. */
static int format_row(Buf *b, PyObject *row, PyObject *labels, PyObject *prices, PyObject *units,
                      PyObject *label_miss, PyObject *price_miss, PyObject *field) {
    PyObject **col = &PyTuple_GET_ITEM(row, 0);
    long long end, tokens[5], costs[6], unpriced_flag, unit_cost = 0;
    if (as_i64(col[C_END], &end) < 0 || as_i64(col[C_UNPRICED], &unpriced_flag) < 0)
        return -1;
    for (int k = 0; k < 5; k++)
        if (as_i64(col[C_T0 + k], &tokens[k]) < 0)
            return -1;
    for (int k = 0; k < 6; k++)
        if (as_i64(col[C_C0 + k], &costs[k]) < 0)
            return -1;
    PyObject *unmetered = col[C_UNMETERED], *invalid = col[C_INVALID];
    if (!PyUnicode_Check(unmetered) || !PyUnicode_Check(invalid)) {
        PyErr_SetString(PyExc_TypeError, "format_rows: unmetered or invalid is not a str");
        return -1;
    }
    int rc = -1;
    PyObject *cells = NULL, *entry = NULL, *unit = NULL;
    cells = cached(labels, col[C_LABELSET], label_miss);
    if (cells == NULL)
        goto done;
    if (!PyTuple_Check(cells) || PyTuple_GET_SIZE(cells) != 3) {
        PyErr_SetString(PyExc_TypeError, "format_rows: label cells are not a 3-tuple");
        goto done;
    }
    entry = cached(prices, col[C_PRICE], price_miss);
    if (entry == NULL)
        goto done;
    if (PyDict_GET_SIZE(units)) {
        PyObject *key = PyTuple_Pack(3, col[C_END], col[C_TRACE], col[C_SPAN]);
        if (key == NULL)
            goto done;
        unit = PyDict_GetItemWithError(units, key);
        Py_DECREF(key);
        if (unit == NULL && PyErr_Occurred())
            goto done;
        Py_XINCREF(unit);
        if (unit != NULL && (!PyTuple_Check(unit) || PyTuple_GET_SIZE(unit) != 4)) {
            PyErr_SetString(PyExc_TypeError, "format_rows: unit cells are not a 4-tuple");
            goto done;
        }
        if (unit != NULL && as_i64(PyTuple_GET_ITEM(unit, 1), &unit_cost) < 0)
            goto done;
    }
    int partial = 0;
    if (unit != NULL && (partial = PyObject_IsTrue(PyTuple_GET_ITEM(unit, 3))) < 0)
        goto done;
    int priced = !(unpriced_flag || PyUnicode_GET_LENGTH(invalid));
    if (put_time(b, end) < 0 || put_char(b, ',') < 0 || put_hex(b, col[C_TRACE]) < 0 || put_char(b, ',') < 0 ||
        put_hex(b, col[C_SPAN]) < 0 || put_char(b, ',') < 0 || put_str(b, PyTuple_GET_ITEM(cells, 0)) < 0 ||
        put_cell(b, col[C_CONVERSATION], field) < 0 || put_char(b, ',') < 0 ||
        put_cell(b, col[C_USER], field) < 0 || put_str(b, PyTuple_GET_ITEM(cells, 1)) < 0)
        goto done;
    for (int k = 0; k < 5; k++)
        if (put_char(b, ',') < 0 || put_i64(b, tokens[k]) < 0)
            goto done;
    if (priced) {
        __int128 total = unit_cost;
        for (int k = 0; k < 6; k++) {
            total += costs[k];
            if (put_char(b, ',') < 0 || put_usd12(b, costs[k]) < 0)
                goto done;
        }
        if (put_char(b, ',') < 0 || put_usd12(b, total) < 0)
            goto done;
    } else if (put(b, ",,,,,,,", 7) < 0) {
        goto done;
    }
    if (put_char(b, ',') < 0 || put_duration(b, col[C_DURATION]) < 0 || put_char(b, ',') < 0 ||
        put_str(b, entry) < 0 || put(b, unpriced_flag ? ",1," : ",0,", 3) < 0 || put(b, priced ? "1," : "0,", 2) < 0)
        goto done;
    const char *word;
    int no_usage = str_equals(unmetered, NO_USAGE), cache_unknown = str_equals(unmetered, CACHE_UNKNOWN);
    if (no_usage < 0 || cache_unknown < 0)
        goto done;
    if (!priced || no_usage)
        word = "incomplete";
    else if (partial)
        word = "partial";
    else
        word = cache_unknown ? "upper_bound" : "exact";
    if (put(b, word, (Py_ssize_t)strlen(word)) < 0 || put_char(b, ',') < 0 ||
        put_str(b, PyTuple_GET_ITEM(cells, 2)) < 0 || put_char(b, ',') < 0)
        goto done;
    if (unit != NULL && put_str(b, PyTuple_GET_ITEM(unit, 0)) < 0)
        goto done;
    if (put_char(b, ',') < 0 || (priced && put_usd12(b, unit_cost) < 0) || put_char(b, ',') < 0)
        goto done;
    if (unit != NULL && put_str(b, PyTuple_GET_ITEM(unit, 2)) < 0)
        goto done;
    rc = put(b, "\r\n", 2);
done:
    Py_XDECREF(cells);
    Py_XDECREF(entry);
    Py_XDECREF(unit);
    return rc;
}

static PyObject *format_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError,
                        "format_rows(rows, labels, prices, units, label_miss, price_miss, field): 7 arguments");
        return NULL;
    }
    PyObject *rows = args[0], *labels = args[1], *prices = args[2], *units = args[3];
    if (!PyList_Check(rows) || !PyDict_Check(labels) || !PyDict_Check(prices) || !PyDict_Check(units)) {
        PyErr_SetString(PyExc_TypeError, "format_rows: rows must be a list; labels, prices and units dicts");
        return NULL;
    }
    Buf b = {NULL, 0, 0};
    Py_INCREF(rows);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != N_COLUMNS) {
            PyErr_SetString(PyExc_TypeError, "format_rows: a row is not a tuple of RECORD_COLUMNS");
            goto fail;
        }
        Py_INCREF(row);
        int rc = format_row(&b, row, labels, prices, units, args[4], args[5], args[6]);
        Py_DECREF(row);
        if (rc < 0)
            goto fail;
    }
    Py_DECREF(rows);
    PyObject *out = PyBytes_FromStringAndSize(b.data ? b.data : "", b.len);
    PyMem_Free(b.data);
    return out;
fail:
    Py_DECREF(rows);
    PyMem_Free(b.data);
    return NULL;
}

static PyObject *take_str(Buf *b, Py_ssize_t from) {
    return PyUnicode_DecodeUTF8(b->data ? b->data + from : "", b->len - from, "strict");
}

#define LABEL_ROW 10 /* id, the 8 label fields, the dimensions' JSON */
#define CONTEXT 2    /* the price context after the dimensions: service_tier, batch */

/* A dimension's value as a cell ("" when absent); 1 when it holds a lone surrogate (the row is not ours). */
static int put_value(Buf *b, const FlatJsonValue *v, Buf *decoded, PyObject *field) {
    if (v->text == NULL)
        return 0;
    if (!v->escaped)
        return put_cell_utf8(b, v->text, (Py_ssize_t)v->len, NULL, field);
    decoded->len = 0;
    if (buf_reserve(decoded, (Py_ssize_t)v->len + 1) < 0)
        return -1;
    ptrdiff_t n = flat_json_decode(v->text, v->len, decoded->data);
    return n < 0 ? 1 : put_cell_utf8(b, decoded->data, (Py_ssize_t)n, NULL, field);
}

static int value_is(const FlatJsonValue *v, Buf *decoded, const char *word) {
    if (v->text == NULL)
        return 0;
    const char *text = v->text;
    ptrdiff_t n = (ptrdiff_t)v->len;
    if (v->escaped) {
        decoded->len = 0;
        if (buf_reserve(decoded, (Py_ssize_t)v->len + 1) < 0)
            return -1;
        n = flat_json_decode(v->text, v->len, decoded->data);
        text = decoded->data;
    }
    return n == (ptrdiff_t)strlen(word) && memcmp(text, word, (size_t)n) == 0;
}

/* The (head, tail, context) cells of one label-set row, or None when json.loads must read its dimensions. */
static PyObject *row_cells(PyObject *row, Py_ssize_t wanted, const char *const *names, const size_t *lens,
                           FlatJsonValue *found, Buf *b, Buf *scratch, PyObject *field) {
    PyObject *json = PyTuple_GET_ITEM(row, LABEL_ROW - 1), *head = NULL, *tail = NULL, *context = NULL;
    if (!PyUnicode_Check(json)) {
        PyErr_SetString(PyExc_TypeError, "label_rows: the dimensions are not a str");
        return NULL;
    }
    Py_ssize_t n;
    const char *text = PyUnicode_AsUTF8AndSize(json, &n);
    if (text == NULL)
        return NULL;
    scratch->len = 0;
    if (buf_reserve(scratch, n + 1) < 0)
        return NULL;
    if (flat_json_find(text, (size_t)n, (size_t)wanted, names, lens, found, scratch->data) < 0)
        Py_RETURN_NONE;
    b->len = 0;
    for (Py_ssize_t i = 1; i < LABEL_ROW - 1; i++)
        if (put_cell(b, PyTuple_GET_ITEM(row, i), field) < 0 || put_char(b, ',') < 0)
            return NULL;
    if ((head = take_str(b, 0)) == NULL)
        return NULL;
    Py_ssize_t mark = b->len;
    int rc = 0;
    for (Py_ssize_t k = 0; rc == 0 && k < wanted - CONTEXT; k++)
        rc = put_char(b, ',') < 0 ? -1 : put_value(b, &found[k], scratch, field);
    if (rc == 0 && (tail = take_str(b, mark)) == NULL)
        rc = -1;
    mark = b->len;
    int is_batch = rc == 0 ? value_is(&found[wanted - 1], scratch, "true") : 0;
    if (rc == 0 && is_batch >= 0)
        rc = put_value(b, &found[wanted - 2], scratch, field);
    if (rc == 0 && is_batch >= 0 && put(b, is_batch ? ",1" : ",0", 2) == 0 && (context = take_str(b, mark)) != NULL) {
        PyObject *out = PyTuple_Pack(3, head, tail, context);
        Py_DECREF(head);
        Py_DECREF(tail);
        Py_DECREF(context);
        return out;
    }
    Py_XDECREF(head);
    Py_XDECREF(tail);
    Py_XDECREF(context);
    if (rc == 1 && !PyErr_Occurred())  /* a lone surrogate: json.loads reads it */
        Py_RETURN_NONE;
    return NULL;
}

/* label_rows(rows, dimensions, field) -> list: call_csv.label_row_cells of each row (a tuple of LABEL_ROW),
 * or None where the dimensions are not a flat JSON object of strings this reader takes (the caller renders
 * that row with the reference). TypeError for a row of another shape or a label field that is not a str. */
static PyObject *label_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 3 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "label_rows(rows: list, dimensions: list, field)");
        return NULL;
    }
    PyObject *rows = args[0], *field = args[2], *out = NULL;
    PyObject *dimensions = PyList_AsTuple(args[1]); /* our own: a callback cannot free the names */
    if (dimensions == NULL)
        return NULL;
    Py_ssize_t wanted = PyTuple_GET_SIZE(dimensions) + CONTEXT;
    const char **names = PyMem_Calloc((size_t)wanted, sizeof(char *));
    size_t *lens = PyMem_Calloc((size_t)wanted, sizeof(size_t));
    FlatJsonValue *found = PyMem_Calloc((size_t)wanted, sizeof(FlatJsonValue));
    Buf b = {NULL, 0, 0}, scratch = {NULL, 0, 0};
    Py_INCREF(rows);
    if (names == NULL || lens == NULL || found == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t k = 0; k < wanted; k++) {
        if (k >= wanted - CONTEXT) {
            names[k] = k == wanted - CONTEXT ? "service_tier" : "batch";
            lens[k] = strlen(names[k]);
            continue;
        }
        PyObject *name = PyTuple_GET_ITEM(dimensions, k);
        Py_ssize_t len;
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "label_rows: a dimension name is not a str");
            goto done;
        }
        if ((names[k] = PyUnicode_AsUTF8AndSize(name, &len)) == NULL)
            goto done;
        lens[k] = (size_t)len;
    }
    Py_ssize_t count = PyList_GET_SIZE(rows);
    if ((out = PyList_New(count)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < count && i < PyList_GET_SIZE(rows); i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != LABEL_ROW) {
            PyErr_SetString(PyExc_TypeError, "label_rows: a row is not (id, 8 label fields, dimensions)");
            Py_CLEAR(out);
            goto done;
        }
        Py_INCREF(row);
        PyObject *cells = row_cells(row, wanted, names, lens, found, &b, &scratch, field);
        Py_DECREF(row);
        if (cells == NULL) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, cells);
    }
    if (PyList_GET_SIZE(rows) != count) { /* a callback changed the list: its rows were not all read */
        PyErr_SetString(PyExc_TypeError, "label_rows: the rows changed while they were read");
        Py_CLEAR(out);
    }
done:
    Py_DECREF(rows);
    Py_DECREF(dimensions);
    PyMem_Free(names);
    PyMem_Free(lens);
    PyMem_Free(found);
    PyMem_Free(b.data);
    PyMem_Free(scratch.data);
    return out;
}

static PyMethodDef METHODS[] = {
    {"label_rows", (PyCFunction)(void (*)(void))label_rows, METH_FASTCALL,
     "label_rows(rows, dimensions, field) -> list: the cells of stored label-set rows (call_csv.label_row_cells), "
     "None for a row whose dimensions json.loads must read."},
    {"format_rows", (PyCFunction)(void (*)(void))format_rows, METH_FASTCALL,
     "format_rows(rows, labels, prices, units, label_miss, price_miss, field) -> bytes: the CSV lines of rows "
     "(call_csv.format_rows_pure)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_call_csv", NULL, -1, METHODS};

PyMODINIT_FUNC PyInit__call_csv(void) {
    PyObject *m = PyModule_Create(&MODULE);
    if (m == NULL)
        return NULL;
    if (PyModule_AddStringConstant(m, "NO_USAGE", NO_USAGE) < 0 ||
        PyModule_AddStringConstant(m, "CACHE_UNKNOWN", CACHE_UNKNOWN) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
