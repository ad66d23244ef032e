/*
 * _flat_json: the members of a flat JSON object of strings (a label set's dimensions as the ledger stores
 * them), read in place, without Python objects. Part of _call_csv (see _flat_json.c).
 */
#ifndef GENAI_METER_FLAT_JSON_H
#define GENAI_METER_FLAT_JSON_H

#include <stddef.h>

/* A member's value: the body of its JSON string (between the quotes) in the text; `escaped` when it holds a
 * backslash escape (decode it with flat_json_decode). `text` is NULL for a key the object does not hold. */
typedef struct {
    const char *text;
    size_t len;
    int escaped;
} FlatJsonValue;

/* Reads the object `s[0..n)` (UTF-8) and sets found[k] to the value of the key names[k] (`lens[k]` bytes of
 * UTF-8): the last one when the key repeats, as Python's json.loads keeps. `scratch` holds at least n bytes
 * (escaped keys are decoded into it). Returns 0, or -1 when the text is not one JSON object whose members are
 * all strings (the caller reads it another way): exactly the texts json.loads accepts as such an object,
 * except that a lone surrogate escape in a key gives -1. */
int flat_json_find(const char *s, size_t n, size_t wanted, const char *const *names, const size_t *lens,
                   FlatJsonValue *found, char *scratch);

/* The UTF-8 of a JSON string body `s[0..n)` (escapes already checked by flat_json_find) written to `out`
 * (at least n bytes: decoding never lengthens); its length, or -1 for a lone surrogate (UTF-8 cannot carry
 * it). */
ptrdiff_t flat_json_decode(const char *s, size_t n, char *out);

#endif
