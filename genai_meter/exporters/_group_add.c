/*
 * _group_add: `add_group`, the optional C accelerator of group_add.add_group_pure (the reference).
 *
 * add_group(slots, calls, tokens, costs, duration_counts, durations, ttft_counts, ttfts, priced, tables)
 * takes the same arguments (positional or by keyword) and makes the same additions, in the same order,
 * each `item += amount` replacing the list item: Python ints of any size, Decimal, float alike through
 * the number protocol (PyNumber_InPlaceAdd), with direct paths giving the same results for one-digit
 * ints (|v| < 2**30) and for two floats. A histogram's sum adds its values one by one in order; while
 * the running total and the values are exact floats this is done in C doubles, the same IEEE addition
 * Python does (bit-identical results). Truth tests are the pure function's: a class counts
 * when `n > 0`, a bucket when `n` is true, the ttft histogram when `ttfts` is true.
 *
 * All or nothing: each addition is written at once (so a later addition to the same item sees it, as
 * in Python) and logged with the item's old value; any error (a wrong type, an index out of range, a
 * failed addition) puts every old value back, in reverse order, and raises a Python exception: the
 * lists are as they were. The lists written must be exact `list`s (TypeError otherwise; the pure
 * function takes any mutable sequence); `slots`, `tables`, index and amount sequences may be any
 * sequence. Only the lists a group needs are checked, as in the pure function (e.g. `errors` only when
 * the error index is not None). Negative indexes count from the end, as for a list.
 *
 * Code that Python objects may run from here (__index__, __gt__, __bool__, __add__, __del__ of an old
 * value) cannot make it crash: items and lists are held by strong references while used, every write
 * checks its index against the list's size then, and old values are released only after all writes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define N_ARGS 10
enum { A_SLOTS, A_CALLS, A_TOKENS, A_COSTS, A_DCOUNTS, A_DURS, A_TCOUNTS, A_TTFTS, A_PRICED, A_TABLES };
static const char *const ARG_NAMES[N_ARGS] = {
    "slots", "calls", "tokens", "costs", "duration_counts", "durations", "ttft_counts", "ttfts", "priced", "tables",
};

#define N_TABLES 12
enum { T_REQUESTS, T_TOKENS, T_COST, T_UNPRICED, T_ERRORS, T_UNMETERED, T_DCOUNTS, T_DSUMS, T_TCOUNTS, T_TSUMS,
       T_COUNTED, T_COUNTED_IDX };
static const char *const TABLE_NAMES[N_TABLES] = {
    "requests", "tokens", "cost", "unpriced", "errors", "unmetered", "duration counts", "duration sums",
    "ttft counts", "ttft sums", "counted", "counted index",
};

#define N_SLOTS 8
enum { S_REQUEST, S_DURATION, S_TTFT, S_TOKEN, S_COST, S_UNPRICED, S_ERROR, S_UNMETERED };

/* Exact ints of one digit (|v| < 2**30) read directly: the counts, tokens and indexes of most groups. */
#if PY_VERSION_HEX >= 0x030C0000
#define IS_COMPACT(o) PyUnstable_Long_IsCompact((PyLongObject *)(o))
#define COMPACT_VALUE(o) ((long)PyUnstable_Long_CompactValue((PyLongObject *)(o)))
#else
#define IS_COMPACT(o) (Py_ABS(Py_SIZE(o)) <= 1)
#define COMPACT_VALUE(o) ((long)Py_SIZE(o) * (long)((PyLongObject *)(o))->ob_digit[0])
#endif

static PyObject *ZERO; /* the int 0 (the cached small int), for `n > 0` */

/* -- the undo log: the old value of every item written ---------------------------------------- */

typedef struct {
    PyObject *list; /* strong reference */
    Py_ssize_t idx; /* non-negative */
    PyObject *old;  /* strong reference: the item before the write */
} Entry;

#define LOCAL_ENTRIES 64
typedef struct {
    Entry *e;
    Py_ssize_t n, cap;
    Entry local[LOCAL_ENTRIES];
} Log;

static void log_init(Log *log) {
    log->e = log->local;
    log->n = 0;
    log->cap = LOCAL_ENTRIES;
}

/* Release the old values (the writes stay). */
static void log_clear(Log *log) {
    for (Py_ssize_t k = 0; k < log->n; k++) {
        Py_DECREF(log->e[k].list);
        Py_DECREF(log->e[k].old);
    }
    log->n = 0;
    if (log->e != log->local) {
        PyMem_Free(log->e);
        log->e = log->local;
        log->cap = LOCAL_ENTRIES;
    }
}

/* Put the old values back, last write first (then release what they replaced). */
static void log_undo(Log *log) {
    for (Py_ssize_t k = log->n - 1; k >= 0; k--) { /* no Python code runs in this loop */
        Entry *e = &log->e[k];
        if (e->idx < PyList_GET_SIZE(e->list)) { /* else a list shrank under hostile code: nothing to restore */
            PyObject **slot = &((PyListObject *)e->list)->ob_item[e->idx];
            PyObject *written = *slot;
            *slot = e->old;
            e->old = written;
        }
    }
    log_clear(log);
}

/* list[idx] = value (stolen), logging the old item; idx is checked against the list's size. */
static int log_write(Log *log, PyObject *list, Py_ssize_t idx, PyObject *value, const char *what) {
    if (idx >= PyList_GET_SIZE(list)) {
        Py_DECREF(value);
        PyErr_Format(PyExc_IndexError, "add_group: %s index out of range", what);
        return -1;
    }
    if (log->n == log->cap) {
        Py_ssize_t cap = log->cap * 2;
        Entry *grown = PyMem_Malloc((size_t)cap * sizeof(Entry));
        if (grown == NULL) {
            Py_DECREF(value);
            PyErr_NoMemory();
            return -1;
        }
        memcpy(grown, log->e, (size_t)log->n * sizeof(Entry));
        if (log->e != log->local)
            PyMem_Free(log->e);
        log->e = grown;
        log->cap = cap;
    }
    PyObject **slot = &((PyListObject *)list)->ob_item[idx];
    Entry *e = &log->e[log->n++];
    e->list = Py_NewRef(list);
    e->idx = idx;
    e->old = *slot; /* the list's reference moves to the log */
    *slot = value;
    return 0;
}

/* list[idx] (new reference), range-checked. */
static PyObject *item_at(PyObject *list, Py_ssize_t idx, const char *what) {
    if (idx >= PyList_GET_SIZE(list)) {
        PyErr_Format(PyExc_IndexError, "add_group: %s index out of range", what);
        return NULL;
    }
    return Py_NewRef(PyList_GET_ITEM(list, idx));
}

/* -- checks ----------------------------------------------------------------------------------- */

static int need_list(PyObject *obj, const char *what) {
    if (PyList_CheckExact(obj))
        return 0;
    PyErr_Format(PyExc_TypeError, "add_group: %s must be a list, not %.200s", what, Py_TYPE(obj)->tp_name);
    return -1;
}

/* `index` as a position in `list` (negative from the end), range-checked. */
static int list_index(PyObject *list, PyObject *index, const char *what, Py_ssize_t *out) {
    if (!PyIndex_Check(index)) {
        PyErr_Format(PyExc_TypeError, "add_group: %s index must be an integer, not %.200s", what,
                     Py_TYPE(index)->tp_name);
        return -1;
    }
    Py_ssize_t i;
    if (PyLong_CheckExact(index) && IS_COMPACT(index)) { /* the usual case, without the __index__ dispatch */
        i = COMPACT_VALUE(index);
    } else if (PyLong_CheckExact(index)) {
        i = PyLong_AsSsize_t(index);
        if (i == -1 && PyErr_Occurred()) {
            PyErr_Clear(); /* as a list does: too big for an index is an IndexError */
            PyErr_Format(PyExc_IndexError, "cannot fit 'int' into an index-sized integer");
            return -1;
        }
    } else {
        i = PyNumber_AsSsize_t(index, PyExc_IndexError);
        if (i == -1 && PyErr_Occurred())
            return -1;
    }
    Py_ssize_t size = PyList_GET_SIZE(list);
    if (i < 0)
        i += size;
    if (i < 0 || i >= size) {
        PyErr_Format(PyExc_IndexError, "add_group: %s index out of range", what);
        return -1;
    }
    *out = i;
    return 0;
}

/* `n > 0` (1, 0, or -1 with an exception). */
static int is_positive(PyObject *n) {
    if (n == ZERO) /* the cached small int: most classes of most groups */
        return 0;
    if (PyLong_CheckExact(n)) {
        if (IS_COMPACT(n))
            return COMPACT_VALUE(n) > 0;
        int overflow;
        long v = PyLong_AsLongAndOverflow(n, &overflow);
        if (v == -1 && !overflow && PyErr_Occurred())
            return -1;
        return overflow > 0 || (overflow == 0 && v > 0);
    }
    return PyObject_RichCompareBool(n, ZERO, Py_GT);
}

/* -- the additions ---------------------------------------------------------------------------- */

/* cur + addend (new reference), as `cur += addend` in Python: one-digit exact ints and exact floats
   directly (the same results), anything else through the number protocol. */
static PyObject *add_numbers(PyObject *cur, PyObject *addend) {
    if (PyLong_CheckExact(cur) && PyLong_CheckExact(addend)) {
        if (IS_COMPACT(cur) && IS_COMPACT(addend)) /* |sum| < 2**31: no overflow in a long */
            return PyLong_FromLong(COMPACT_VALUE(cur) + COMPACT_VALUE(addend));
    } else if (PyFloat_CheckExact(cur) && PyFloat_CheckExact(addend)) {
        return PyFloat_FromDouble(PyFloat_AS_DOUBLE(cur) + PyFloat_AS_DOUBLE(addend));
    }
    return PyNumber_InPlaceAdd(cur, addend);
}

/* list[idx] += addend, logged. */
static int log_add(Log *log, PyObject *list, Py_ssize_t idx, PyObject *addend, const char *what) {
    PyObject *cur = item_at(list, idx, what);
    if (cur == NULL)
        return -1;
    PyObject *sum = add_numbers(cur, addend);
    Py_DECREF(cur);
    if (sum == NULL)
        return -1;
    return log_write(log, list, idx, sum, what); /* checks idx again: __add__ may have shrunk the list */
}

/* list[index] += addend, logged; `index` a Python index. */
static int add_at(Log *log, PyObject *list, PyObject *index, PyObject *addend, const char *what) {
    Py_ssize_t idx;
    if (need_list(list, what) < 0 || list_index(list, index, what, &idx) < 0)
        return -1;
    return log_add(log, list, idx, addend, what);
}

/* for i, n in enumerate(amounts): if n > 0: values[indexes[i]] += n */
static int add_classes(Log *log, PyObject *values, PyObject *amounts, PyObject *indexes, const char *what) {
    PyObject *fast = PySequence_Fast(amounts, "add_group: the token and cost amounts must be sequences");
    if (fast == NULL)
        return -1;
    PyObject *fast_idx = NULL;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(fast); i++) {
        PyObject *n = PySequence_Fast_GET_ITEM(fast, i);
        Py_INCREF(n);
        int positive = is_positive(n);
        if (positive < 0) {
            rc = -1;
        } else if (positive) {
            if (fast_idx == NULL)
                fast_idx = PySequence_Fast(indexes, "add_group: the class indexes in slots must be a sequence");
            if (fast_idx == NULL) {
                rc = -1;
            } else if (i >= PySequence_Fast_GET_SIZE(fast_idx)) {
                PyErr_Format(PyExc_IndexError, "add_group: no %s class index %zd in slots", what, i);
                rc = -1;
            } else {
                PyObject *index = PySequence_Fast_GET_ITEM(fast_idx, i);
                Py_INCREF(index);
                rc = add_at(log, values, index, n, what);
                Py_DECREF(index);
            }
        }
        Py_DECREF(n);
    }
    Py_XDECREF(fast_idx);
    Py_DECREF(fast);
    return rc;
}

/* total + values[0] + values[1] + ... (new reference), in C doubles while all are exact floats. */
static PyObject *sum_in_order(PyObject *total, PyObject *values) {
    PyObject *fast = PySequence_Fast(values, "add_group: the observed values must be a sequence");
    if (fast == NULL)
        return NULL;
    Py_INCREF(total);
    Py_ssize_t i = 0;
    while (total != NULL && i < PySequence_Fast_GET_SIZE(fast)) {
        if (PyFloat_CheckExact(total)) {
            Py_ssize_t j = i, size = PySequence_Fast_GET_SIZE(fast);
            double t = PyFloat_AS_DOUBLE(total);
            PyObject *v;
            while (j < size && PyFloat_CheckExact(v = PySequence_Fast_GET_ITEM(fast, j))) {
                t += PyFloat_AS_DOUBLE(v);
                j++;
            }
            if (j > i) {
                Py_SETREF(total, PyFloat_FromDouble(t));
                i = j;
                continue;
            }
        }
        PyObject *v = PySequence_Fast_GET_ITEM(fast, i);
        Py_INCREF(v);
        Py_SETREF(total, PyNumber_InPlaceAdd(total, v));
        Py_DECREF(v);
        i++;
    }
    Py_DECREF(fast);
    return total;
}

/* _observe_all(counts_all[index], sums, index, counts, values) */
static int observe_all(Log *log, PyObject *counts_all, PyObject *sums, PyObject *index, PyObject *counts,
                       PyObject *values, const char *counts_what, const char *sums_what) {
    Py_ssize_t idx, sidx;
    if (need_list(counts_all, counts_what) < 0 || list_index(counts_all, index, counts_what, &idx) < 0)
        return -1;
    PyObject *buckets = item_at(counts_all, idx, counts_what);
    if (buckets == NULL)
        return -1;
    PyObject *fast = NULL;
    int rc = need_list(buckets, "a histogram's bucket counts");
    if (rc == 0) {
        fast = PySequence_Fast(counts, "add_group: the bucket counts must be a sequence");
        rc = fast == NULL ? -1 : 0;
    }
    for (Py_ssize_t i = 0; rc == 0 && i < PySequence_Fast_GET_SIZE(fast); i++) {
        PyObject *n = PySequence_Fast_GET_ITEM(fast, i);
        Py_INCREF(n);
        int truth = PyLong_CheckExact(n) && IS_COMPACT(n) ? COMPACT_VALUE(n) != 0 : PyObject_IsTrue(n);
        if (truth < 0)
            rc = -1;
        else if (truth)
            rc = log_add(log, buckets, i, n, "bucket");
        Py_DECREF(n);
    }
    Py_XDECREF(fast);
    Py_DECREF(buckets);
    if (rc < 0 || need_list(sums, sums_what) < 0 || list_index(sums, index, sums_what, &sidx) < 0)
        return -1;
    PyObject *total = item_at(sums, sidx, sums_what);
    if (total == NULL)
        return -1;
    PyObject *sum = sum_in_order(total, values);
    Py_DECREF(total);
    if (sum == NULL)
        return -1;
    return log_write(log, sums, sidx, sum, sums_what);
}

/* The group's additions in add_group_pure's order, logged; `s`: slots[:8], `t`: the 12 tables. */
static int add_all(Log *log, PyObject **a, PyObject *const *s, PyObject *const *t) {
    PyObject *calls = a[A_CALLS];
    int priced = PyObject_IsTrue(a[A_PRICED]);
    if (priced < 0)
        return -1;
    if (add_at(log, t[T_REQUESTS], s[S_REQUEST], calls, TABLE_NAMES[T_REQUESTS]) < 0
        || add_classes(log, t[T_TOKENS], a[A_TOKENS], s[S_TOKEN], TABLE_NAMES[T_TOKENS]) < 0)
        return -1;
    if (priced) {
        if (add_classes(log, t[T_COST], a[A_COSTS], s[S_COST], TABLE_NAMES[T_COST]) < 0)
            return -1;
    } else if (add_at(log, t[T_UNPRICED], s[S_UNPRICED], calls, TABLE_NAMES[T_UNPRICED]) < 0) {
        return -1;
    }
    if (s[S_ERROR] != Py_None && add_at(log, t[T_ERRORS], s[S_ERROR], calls, TABLE_NAMES[T_ERRORS]) < 0)
        return -1;
    if (s[S_UNMETERED] != Py_None
        && add_at(log, t[T_UNMETERED], s[S_UNMETERED], calls, TABLE_NAMES[T_UNMETERED]) < 0)
        return -1;
    if (observe_all(log, t[T_DCOUNTS], t[T_DSUMS], s[S_DURATION], a[A_DCOUNTS], a[A_DURS], TABLE_NAMES[T_DCOUNTS],
                    TABLE_NAMES[T_DSUMS]) < 0)
        return -1;
    int with_ttfts = PyObject_IsTrue(a[A_TTFTS]);
    if (with_ttfts < 0)
        return -1;
    if (with_ttfts && observe_all(log, t[T_TCOUNTS], t[T_TSUMS], s[S_TTFT], a[A_TCOUNTS], a[A_TTFTS],
                                  TABLE_NAMES[T_TCOUNTS], TABLE_NAMES[T_TSUMS]) < 0)
        return -1;
    if (t[T_COUNTED] != Py_None && add_at(log, t[T_COUNTED], t[T_COUNTED_IDX], calls, TABLE_NAMES[T_COUNTED]) < 0)
        return -1;
    return 0;
}

/* -- the function ----------------------------------------------------------------------------- */

static int parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject **a) {
    if (nargs > N_ARGS) {
        PyErr_Format(PyExc_TypeError, "add_group() takes %d positional arguments but %zd were given", N_ARGS,
                     nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        a[i] = args[i];
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int found = -1;
        for (int i = 0; i < N_ARGS && found < 0; i++) {
            if (PyUnicode_CompareWithASCIIString(name, ARG_NAMES[i]) == 0)
                found = i;
        }
        if (found < 0) {
            PyErr_Format(PyExc_TypeError, "add_group() got an unexpected keyword argument '%U'", name);
            return -1;
        }
        if (a[found] != NULL) {
            PyErr_Format(PyExc_TypeError, "add_group() got multiple values for argument '%s'", ARG_NAMES[found]);
            return -1;
        }
        a[found] = args[nargs + k];
    }
    for (int i = 0; i < N_ARGS; i++) {
        if (a[i] == NULL) {
            PyErr_Format(PyExc_TypeError, "add_group() missing required argument '%s'", ARG_NAMES[i]);
            return -1;
        }
    }
    return 0;
}

static PyObject *add_group(PyObject *module, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    (void)module;
    PyObject *a[N_ARGS] = {NULL};
    if (parse_args(args, nargs, kwnames, a) < 0)
        return NULL;
    /* strong references to the two sequences unpacked (they may be lists that Python code mutates) */
    PyObject *slots = PySequence_Fast(a[A_SLOTS], "add_group: slots must be a sequence");
    if (slots == NULL)
        return NULL;
    PyObject *tables = PySequence_Fast(a[A_TABLES], "add_group: tables must be a sequence");
    if (tables == NULL) {
        Py_DECREF(slots);
        return NULL;
    }
    PyObject *result = NULL;
    Log log;
    log_init(&log);
    if (PySequence_Fast_GET_SIZE(slots) < N_SLOTS) {
        PyErr_Format(PyExc_ValueError, "add_group: slots needs at least %d items, got %zd", N_SLOTS,
                     PySequence_Fast_GET_SIZE(slots));
    } else if (PySequence_Fast_GET_SIZE(tables) != N_TABLES) {
        PyErr_Format(PyExc_ValueError, "add_group: tables needs %d items, got %zd", N_TABLES,
                     PySequence_Fast_GET_SIZE(tables));
    } else {
        /* the items, held while Python code may run (a list argument could be mutated meanwhile) */
        PyObject *items[N_SLOTS + N_TABLES];
        for (int i = 0; i < N_SLOTS; i++)
            items[i] = Py_NewRef(PySequence_Fast_GET_ITEM(slots, i));
        for (int i = 0; i < N_TABLES; i++)
            items[N_SLOTS + i] = Py_NewRef(PySequence_Fast_GET_ITEM(tables, i));
        if (add_all(&log, a, items, items + N_SLOTS) == 0)
            result = Py_NewRef(Py_None);
        else
            log_undo(&log);
        for (int i = 0; i < N_SLOTS + N_TABLES; i++)
            Py_DECREF(items[i]);
    }
    Py_DECREF(tables);
    Py_DECREF(slots);
    log_clear(&log);
    return result;
}

static PyMethodDef METHODS[] = {
    {"add_group", (PyCFunction)(void (*)(void))add_group, METH_FASTCALL | METH_KEYWORDS,
     "add_group(slots, calls, tokens, costs, duration_counts, durations, ttft_counts, ttfts, priced, tables)\n"
     "--\n\n"
     "group_add.add_group_pure in C: the same additions, all or nothing."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {
    PyModuleDef_HEAD_INIT, "genai_meter.exporters._group_add",
    "The optional C accelerator of genai_meter.exporters.group_add.", -1, METHODS, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__group_add(void) {
    if (ZERO == NULL && (ZERO = PyLong_FromLong(0)) == NULL)
        return NULL;
    return PyModule_Create(&MODULE);
}
