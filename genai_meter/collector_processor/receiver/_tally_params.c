/*
 * _tally_params: `params(taken, heads)`, the optional C accelerator of tally_rows.params_pure (the reference).
 *
 * For each Taken tuple t of `taken` (a list), with head = heads[t.group] (9 items: labelset id, conversation,
 * user, price id, unmetered, invalid, cache_write_1h, weight_micro, unpriced), builds the SQLite insert
 * parameters (sqlite_params.CALL_COLUMNS order):
 *   (end_ns, bytearray(trace_id), bytearray(span_id), bytearray(parent_span_id), labelset, conversation, user,
 *    NO_TTFT if ttft is None else max(0, round(ttft * 1_000_000)), price, unmetered, invalid, cache_write_1h,
 *    *tokens, *costs, sum(costs), max(0, round(duration * 1_000_000)), weight_micro, unpriced)
 * and returns the list: the same values as the reference, for the shapes it models. A float duration or ttft
 * is multiplied by 1e6 in IEEE double and rounded half-even (nearbyint in the default rounding mode, as Python's
 * round), converted exactly (PyLong_FromDouble: OverflowError for an infinity, ValueError for a NaN, as round);
 * an int goes through int `*` and `round` (C code of those types); sum(costs) adds ints.
 *
 * It returns None, having changed nothing and run no Python code, when a call has a shape it does not model, and
 * the caller then runs the reference on the whole list: `taken` not a list, an item that is not a tally.Taken of
 * 9 items, `heads` neither a list nor a tuple, a group that is no exact int, a head that is not a tuple of 9, tokens
 * or costs that are not tuples of 5 and 6 (costs of exact ints), a duration or ttft that is no float or exact int
 * (ttft: or None), ids that are not bytes. So every input gives the reference's result or its exception: for the
 * modelled shapes only `heads[group]` (IndexError) and round (an infinity, a NaN) can raise, on the same call and
 * with the same exception as in the reference, since no earlier call could have raised there.
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
static PyTypeObject *TAKEN; /* tally.Taken, at first use */

#define BAILED ((PyObject *)&BAILED_MARK) /* one_call: a shape not modelled here */
static char BAILED_MARK;

/* A duration or ttft this code models: a float or an exact int. */
static int seconds_ok(PyObject *seconds) { return PyFloat_CheckExact(seconds) || PyLong_CheckExact(seconds); }

/* max(0, round(seconds * 1_000_000)) of a float or an exact int, as a new reference (NULL: an exception is set). */
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

/* sum(costs) of a tuple of exact ints (new reference). */
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

/* Whether one Taken `t` and its head have the shapes modelled here (nothing is called). */
static int modelled(PyObject *t, PyObject *head) {
    PyObject *tokens = PyTuple_GET_ITEM(t, T_TOKENS), *costs = PyTuple_GET_ITEM(t, T_COSTS),
             *ttft = PyTuple_GET_ITEM(t, T_TTFT);
    if (!PyTuple_CheckExact(head) || PyTuple_GET_SIZE(head) != H_N || !PyTuple_CheckExact(tokens) ||
        PyTuple_GET_SIZE(tokens) != N_TOKENS || !PyTuple_CheckExact(costs) || PyTuple_GET_SIZE(costs) != N_COSTS ||
        !seconds_ok(PyTuple_GET_ITEM(t, T_DURATION)) || (ttft != Py_None && !seconds_ok(ttft)) ||
        !PyBytes_CheckExact(PyTuple_GET_ITEM(t, T_TRACE)) || !PyBytes_CheckExact(PyTuple_GET_ITEM(t, T_SPAN)) ||
        !PyBytes_CheckExact(PyTuple_GET_ITEM(t, T_PARENT)))
        return 0;
    for (Py_ssize_t i = 0; i < N_COSTS; i++)
        if (!PyLong_CheckExact(PyTuple_GET_ITEM(costs, i)))
            return 0;
    return 1;
}

/* The parameters of one call (a new reference), NULL with an exception set, or BAILED. */
static PyObject *one_call(PyObject *t, PyObject *heads) {
    if (!Py_IS_TYPE(t, TAKEN) || PyTuple_GET_SIZE(t) != T_N || !PyLong_CheckExact(PyTuple_GET_ITEM(t, T_GROUP)))
        return BAILED;
    PyObject *head = PyObject_GetItem(heads, PyTuple_GET_ITEM(t, T_GROUP)); /* a list or tuple: C code */
    if (head == NULL)
        return NULL;
    PyObject *tokens = PyTuple_GET_ITEM(t, T_TOKENS), *costs = PyTuple_GET_ITEM(t, T_COSTS);
    PyObject *out = NULL;
    if (!modelled(t, head)) {
        Py_DECREF(head);
        return BAILED;
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
    if (TAKEN == NULL) {
        PyObject *tally = PyImport_ImportModule("genai_meter.collector_processor.metering.tally");
        PyObject *type = tally == NULL ? NULL : PyObject_GetAttrString(tally, "Taken");
        Py_XDECREF(tally);
        if (type == NULL)
            return NULL;
        if (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, &PyTuple_Type)) {
            Py_DECREF(type);
            PyErr_SetString(PyExc_RuntimeError, "_tally_params: tally.Taken is no tuple type: rebuild it");
            return NULL;
        }
        TAKEN = (PyTypeObject *)type;
    }
    if (!PyList_CheckExact(taken) || (!PyList_CheckExact(heads) && !PyTuple_CheckExact(heads)))
        Py_RETURN_NONE;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(taken); i++) {
        PyObject *t = Py_NewRef(PyList_GET_ITEM(taken, i));
        PyObject *row = one_call(t, heads);
        Py_DECREF(t);
        if (row == BAILED) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
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
     "params(taken, heads) -> list | None: the SQLite insert parameters of taken calls (tally_rows.params_pure); "
     "None for a shape not modelled here (run the reference)."},
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
