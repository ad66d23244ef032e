/*
 * _tally_params: `params(taken, heads)`, the optional C accelerator of tally_rows.params_pure (the reference).
 *
 * For each Taken tuple t of `taken` (a list), with head = heads[t.group] (9 items: labelset id, conversation,
 * user, price id, unmetered, invalid, cache_write_1h, weight_micro, unpriced), builds the SQLite insert
 * parameters (sqlite_params.CALL_COLUMNS order):
 *   (end_ns, bytearray(trace_id), bytearray(span_id), bytearray(parent_span_id), labelset, conversation, user,
 *    NO_TTFT if ttft is None else max(0, round(ttft * 1_000_000)), price, unmetered, invalid, cache_write_1h,
 *    *tokens, *costs, sum(costs), max(0, round(duration * 1_000_000)), weight_micro, unpriced)
 * and returns the list. The same values as the reference: a float duration or ttft is multiplied by 1e6 in
 * IEEE double and rounded half-even (nearbyint in the default rounding mode, as Python's round), converted
 * exactly (PyLong_FromDouble: OverflowError for an infinity, ValueError for a NaN, as round); any other type
 * goes through Python's own `*` and `round`; sum(costs) adds the items with the number protocol (any int).
 * Shapes the reference would reject raise here too: TypeError for a `taken` that is not a list or an item
 * that is not a tuple of at least 9 items, ValueError for a head that does not unpack into 9, the
 * exceptions of heads[t.group] as raised by the sequence itself.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

/* Taken fields (tally.Taken order) and head fields (tally_rows.TallyParams). */
enum { T_GROUP, T_TOKENS, T_COSTS, T_DURATION, T_TTFT, T_END, T_TRACE, T_SPAN, T_PARENT, T_N };
enum { H_LABELSET, H_CONVERSATION, H_USER, H_PRICE, H_UNMETERED, H_INVALID, H_CACHE_1H, H_WEIGHT, H_UNPRICED, H_N };
#define N_TOKENS 5
#define N_COSTS 6
#define N_PARAMS 27

static PyObject *MILLION; /* the int 1_000_000 */
static PyObject *ZERO;    /* the int 0 */
static PyObject *NO_TTFT; /* the int -1 */
static PyObject *ROUND;   /* builtins.round */

/* max(0, round(seconds * 1_000_000)) as a new reference (NULL: an exception is set). */
static PyObject *micros(PyObject *seconds) {
    PyObject *rounded;
    if (PyFloat_CheckExact(seconds)) {
        rounded = PyLong_FromDouble(nearbyint(PyFloat_AS_DOUBLE(seconds) * 1e6));
    } else {
        PyObject *scaled = PyNumber_Multiply(seconds, MILLION);
        if (scaled == NULL)
            return NULL;
        rounded = PyObject_CallOneArg(ROUND, scaled);
        Py_DECREF(scaled);
    }
    if (rounded == NULL)
        return NULL;
    int negative = PyObject_RichCompareBool(rounded, ZERO, Py_LT);
    if (negative < 0) {
        Py_DECREF(rounded);
        return NULL;
    }
    if (negative) {
        Py_DECREF(rounded);
        return Py_NewRef(ZERO);
    }
    return rounded;
}

/* sum(costs) of a tuple (new reference). */
static PyObject *sum_of(PyObject *costs) {
    PyObject *total = Py_NewRef(ZERO);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(costs); i++) {
        PyObject *next = PyNumber_Add(total, PyTuple_GET_ITEM(costs, i));
        Py_DECREF(total);
        if (next == NULL)
            return NULL;
        total = next;
    }
    return total;
}

/* Item `i` of `out`, a new reference stolen (NULL: the caller fails). */
#define PUT(out, i, value)                   \
    do {                                     \
        PyObject *v_ = (value);              \
        if (v_ == NULL)                      \
            goto fail;                       \
        PyTuple_SET_ITEM((out), (i), v_);    \
    } while (0)

static PyObject *one_call(PyObject *t, PyObject *heads) {
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) < T_N) {
        PyErr_SetString(PyExc_TypeError, "params: each taken call must be a Taken tuple");
        return NULL;
    }
    PyObject *head = PyObject_GetItem(heads, PyTuple_GET_ITEM(t, T_GROUP));
    if (head == NULL)
        return NULL;
    PyObject *tokens = PyTuple_GET_ITEM(t, T_TOKENS), *costs = PyTuple_GET_ITEM(t, T_COSTS);
    PyObject *out = NULL;
    if (!PyTuple_Check(head) || PyTuple_GET_SIZE(head) != H_N) {
        PyErr_SetString(PyExc_ValueError, "params: a group head must unpack into 9 values");
        goto fail;
    }
    if (!PyTuple_Check(tokens) || PyTuple_GET_SIZE(tokens) != N_TOKENS || !PyTuple_Check(costs) ||
        PyTuple_GET_SIZE(costs) != N_COSTS) {
        PyErr_SetString(PyExc_TypeError, "params: tokens and costs must be tuples of 5 and 6 ints");
        goto fail;
    }
    out = PyTuple_New(N_PARAMS);
    if (out == NULL)
        goto fail;
    PUT(out, 0, Py_NewRef(PyTuple_GET_ITEM(t, T_END)));
    PUT(out, 1, PyByteArray_FromObject(PyTuple_GET_ITEM(t, T_TRACE)));
    PUT(out, 2, PyByteArray_FromObject(PyTuple_GET_ITEM(t, T_SPAN)));
    PUT(out, 3, PyByteArray_FromObject(PyTuple_GET_ITEM(t, T_PARENT)));
    PUT(out, 4, Py_NewRef(PyTuple_GET_ITEM(head, H_LABELSET)));
    PUT(out, 5, Py_NewRef(PyTuple_GET_ITEM(head, H_CONVERSATION)));
    PUT(out, 6, Py_NewRef(PyTuple_GET_ITEM(head, H_USER)));
    PyObject *ttft = PyTuple_GET_ITEM(t, T_TTFT);
    PUT(out, 7, ttft == Py_None ? Py_NewRef(NO_TTFT) : micros(ttft));
    PUT(out, 8, Py_NewRef(PyTuple_GET_ITEM(head, H_PRICE)));
    PUT(out, 9, Py_NewRef(PyTuple_GET_ITEM(head, H_UNMETERED)));
    PUT(out, 10, Py_NewRef(PyTuple_GET_ITEM(head, H_INVALID)));
    PUT(out, 11, Py_NewRef(PyTuple_GET_ITEM(head, H_CACHE_1H)));
    for (Py_ssize_t i = 0; i < N_TOKENS; i++)
        PUT(out, 12 + i, Py_NewRef(PyTuple_GET_ITEM(tokens, i)));
    for (Py_ssize_t i = 0; i < N_COSTS; i++)
        PUT(out, 17 + i, Py_NewRef(PyTuple_GET_ITEM(costs, i)));
    PUT(out, 23, sum_of(costs));
    PUT(out, 24, micros(PyTuple_GET_ITEM(t, T_DURATION)));
    PUT(out, 25, Py_NewRef(PyTuple_GET_ITEM(head, H_WEIGHT)));
    PUT(out, 26, Py_NewRef(PyTuple_GET_ITEM(head, H_UNPRICED)));
    Py_DECREF(head);
    return out;
fail:
    Py_XDECREF(out); /* unset items are NULL: tuple dealloc skips them */
    Py_DECREF(head);
    return NULL;
}

static PyObject *params(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "params(taken, heads) takes 2 arguments");
        return NULL;
    }
    PyObject *taken = args[0], *heads = args[1];
    if (!PyList_Check(taken)) {
        PyErr_SetString(PyExc_TypeError, "params: taken must be a list");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(taken); i++) {
        PyObject *t = Py_NewRef(PyList_GET_ITEM(taken, i)); /* held: heads[...] may run Python code */
        PyObject *row = one_call(t, heads);
        Py_DECREF(t);
        if (row == NULL || PyList_Append(out, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(row);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"params", (PyCFunction)(void (*)(void))params, METH_FASTCALL,
     "params(taken, heads) -> list: the SQLite insert parameters of taken calls (tally_rows.params_pure)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_tally_params", "tally_rows.params_pure in C (optional accelerator).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tally_params(void) {
    MILLION = PyLong_FromLong(1000000);
    ZERO = PyLong_FromLong(0);
    NO_TTFT = PyLong_FromLong(-1);
    PyObject *builtins = PyImport_ImportModule("builtins");
    if (MILLION == NULL || ZERO == NULL || NO_TTFT == NULL || builtins == NULL) {
        Py_XDECREF(builtins);
        return NULL;
    }
    ROUND = PyObject_GetAttrString(builtins, "round");
    Py_DECREF(builtins);
    if (ROUND == NULL)
        return NULL;
    return PyModule_Create(&module_def);
}
