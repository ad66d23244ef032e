/*
 * _flat_json: reads the members of a flat JSON object of strings in place (see _flat_json.h).
 *
 * The grammar is RFC 8259's, as Python's json.loads applies it: whitespace is space, tab, CR and LF; a string
 * holds no raw character below U+0020; escapes are \" \\ \/ \b \f \n \r \t and \u with four hex digits. Any
 * other value than a string (number, literal, array, object) makes the text "not ours": the caller then reads
 * it with json.loads, so a text this reader and json.loads would read differently is never read here.
 */
#include "_flat_json.h"

#include <string.h>

#define BAD ((size_t)-1)

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t skip_ws(const char *s, size_t n, size_t i) {
    while (i < n && is_ws(s[i]))
        i++;
    return i;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The four hex digits at s[i..i+4) as a code unit, or -1. */
static long hex4(const char *s, size_t n, size_t i) {
    if (n < 4 || i > n - 4)
        return -1;
    long v = 0;
    for (size_t k = 0; k < 4; k++) {
        int d = hex_value(s[i + k]);
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The index of the closing quote of the string whose body starts at i (escapes checked), or BAD. */
static size_t string_end(const char *s, size_t n, size_t i, int *escaped) {
    *escaped = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i;
        if (c < 0x20)
            return BAD;
        if (c != '\\') {
            i++;
            continue;
        }
        *escaped = 1;
        if (i + 1 >= n)
            return BAD;
        char e = s[i + 1];
        if (e == 'u') {
            if (hex4(s, n, i + 2) < 0)
                return BAD;
            i += 6;
        } else if (e != '\0' && strchr("\"\\/bfnrt", e) != NULL) {
            i += 2;
        } else {
            return BAD;
        }
    }
    return BAD;
}

static size_t put_utf8(char *out, unsigned long cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

ptrdiff_t flat_json_decode(const char *s, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] != '\\') {
            out[o++] = s[i++];
            continue;
        }
        char e = s[i + 1];
        if (e != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            out[o++] = to[strchr(from, e) - from];
            i += 2;
            continue;
        }
        unsigned long cp = (unsigned long)hex4(s, n, i + 2);
        i += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            long low = i + 1 < n && s[i] == '\\' && s[i + 1] == 'u' ? hex4(s, n, i + 2) : -1;
            if (low < 0xDC00 || low > 0xDFFF)
                return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned long)low - 0xDC00);
            i += 6;
        }
        o += put_utf8(out + o, cp);
    }
    return (ptrdiff_t)o;
}

int flat_json_find(const char *s, size_t n, size_t wanted, const char *const *names, const size_t *lens,
                   FlatJsonValue *found, char *scratch) {
    for (size_t k = 0; k < wanted; k++)
        found[k].text = NULL;
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{')
        return -1;
    i = skip_ws(s, n, i + 1);
    if (i < n && s[i] == '}')
        return skip_ws(s, n, i + 1) == n ? 0 : -1;
    for (;;) {
        int key_escaped, value_escaped;
        if (i >= n || s[i] != '"')
            return -1;
        size_t key_end = string_end(s, n, i + 1, &key_escaped);
        if (key_end == BAD)
            return -1;
        const char *key = s + i + 1;
        size_t key_len = key_end - (i + 1);
        if (key_escaped) {
            ptrdiff_t decoded = flat_json_decode(key, key_len, scratch);
            if (decoded < 0)
                return -1;
            key = scratch;
            key_len = (size_t)decoded;
        }
        i = skip_ws(s, n, key_end + 1);
        if (i >= n || s[i] != ':')
            return -1;
        i = skip_ws(s, n, i + 1);
        if (i >= n || s[i] != '"')  /* a value that is not a string */
            return -1;
        size_t value_end = string_end(s, n, i + 1, &value_escaped);
        if (value_end == BAD)
            return -1;
        for (size_t k = 0; k < wanted; k++)
            if (lens[k] == key_len && memcmp(names[k], key, key_len) == 0)
                found[k] = (FlatJsonValue){s + i + 1, value_end - (i + 1), value_escaped};
        i = skip_ws(s, n, value_end + 1);
        if (i < n && s[i] == ',') {
            i = skip_ws(s, n, i + 1);
            continue;
        }
        if (i < n && s[i] == '}')
            return skip_ws(s, n, i + 1) == n ? 0 : -1;
        return -1;
    }
}
