/* Native vanity search kernel: the same walk, candidates and answers as xwpy/apps/vanitygen/kernel.py,
 * in C with its own field arithmetic, SHA-256 and RIPEMD-160 (no OpenSSL, no libsecp256k1).
 *
 * Python sets up the walk (first batch centre, table of jG) and handles the rare degenerate batch;
 * this module runs the hot loop: batched affine additions, six candidates per point, hashing in
 * 16-lane groups (portable C, vector extensions per instruction set, SHA-NI where present) and an
 * integer comparison of each hash160 with the target ranges. See walk.py for the batch layout and
 * candidates.py for the candidate order. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "field.h"
#include "hash_scalar.h"

/* ---- hashing implementations: each hashes 16 messages given as structure-of-arrays words ---- */

#define LANES_ATTR
#define LANES_NAME(x) x##_vec
#include "hash_lanes.h"
#undef LANES_ATTR
#undef LANES_NAME

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define XWPY_X86 1
#include <cpuid.h>
#define LANES_ATTR __attribute__((target("avx2")))
#define LANES_NAME(x) x##_avx2
#include "hash_lanes.h"
#undef LANES_ATTR
#undef LANES_NAME
#define LANES_ATTR __attribute__((target("avx512f")))
#define LANES_NAME(x) x##_avx512
#include "hash_lanes.h"
#undef LANES_ATTR
#undef LANES_NAME
#include "sha_ni.h"
#endif

typedef void (*hash_fn)(const uint32_t *words, int nblk, uint32_t out[5][16]);

static void hash160_x16_scalar(const uint32_t *words, int nblk, uint32_t out[5][16]) {
    for (int lane = 0; lane < 16; lane++) {
        uint32_t s[8], w[16], x[16], h[5];
        memcpy(s, SHA256_IV, sizeof s);
        for (int blk = 0; blk < nblk; blk++) {
            for (int i = 0; i < 16; i++) w[i] = words[(blk * 16 + i) * 16 + lane];
            sha256_block(s, w);
        }
        for (int i = 0; i < 8; i++) x[i] = BSWAP32(s[i]);
        memset(x + 8, 0, 8 * sizeof(uint32_t));
        x[8] = 0x80;
        x[14] = 256;
        memcpy(h, RMD_IV, sizeof h);
        rmd160_block(h, x);
        for (int i = 0; i < 5; i++) out[i][lane] = h[i];
    }
}

#ifdef XWPY_X86
static void hash160_x16_shani_avx2(const uint32_t *words, int nblk, uint32_t out[5][16]) {
    uint32_t sha[8][16] __attribute__((aligned(64)));
    shani_sha256_x16(words, nblk, sha);
    rmd160_x16_avx2(sha, out);
}

static void hash160_x16_shani_avx512(const uint32_t *words, int nblk, uint32_t out[5][16]) {
    uint32_t sha[8][16] __attribute__((aligned(64)));
    shani_sha256_x16(words, nblk, sha);
    rmd160_x16_avx512(sha, out);
}

static int cpu_features(int *avx2, int *avx512, int *sha) {
    unsigned a, b, c, d;
    *avx2 = *avx512 = *sha = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int sse41 = (c >> 19) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    unsigned long long xcr0 = 0;
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = ((unsigned long long)hi << 32) | lo;
    }
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int ymm = avx && (xcr0 & 0x6) == 0x6;
    int zmm = ymm && (xcr0 & 0xe6) == 0xe6;
    *avx2 = ymm && ((b >> 5) & 1);
    *avx512 = zmm && ((b >> 16) & 1);
    *sha = sse41 && ((b >> 29) & 1);
    return 1;
}
#endif

typedef struct {
    const char *name;
    hash_fn fn;
    int available;
} impl_t;

static impl_t IMPLS[] = {
#ifdef XWPY_X86
    /* measured order on an AMD EPYC (Zen 4): 16-lane AVX-512 SHA-256 edges out SHA-NI there */
    {"avx512", hash160_x16_avx512, 0},
    {"sha-ni+avx512", hash160_x16_shani_avx512, 0},
    {"sha-ni+avx2", hash160_x16_shani_avx2, 0},
    {"avx2", hash160_x16_avx2, 0},
#endif
    {"vector", hash160_x16_vec, 1},
    {"scalar", hash160_x16_scalar, 1},
};
#define N_IMPLS ((int)(sizeof IMPLS / sizeof IMPLS[0]))

static void detect_impls(void) {
#ifdef XWPY_X86
    int avx2, avx512, sha;
    cpu_features(&avx2, &avx512, &sha);
    for (int i = 0; i < N_IMPLS; i++) {
        const char *n = IMPLS[i].name;
        int need_sha = strstr(n, "sha-ni") != NULL;
        int need_512 = strstr(n, "avx512") != NULL;
        int need_avx2 = strstr(n, "avx2") != NULL;
        if (need_sha || need_512 || need_avx2)
            IMPLS[i].available = (!need_sha || sha) && (!need_512 || avx512) && (!need_avx2 || avx2);
    }
#endif
}

static hash_fn find_impl(const char *name) {
    for (int i = 0; i < N_IMPLS; i++)
        if (IMPLS[i].available && (name == NULL || strcmp(name, IMPLS[i].name) == 0))
            return IMPLS[i].fn;
    return NULL;
}

/* ---- message preparation ---- */

/* Words 0..8 of (byte b || big-endian 256-bit v || ...): w[8] gets v's last byte in its top byte. */
static inline void put_words(uint32_t *w, int stride, uint32_t b, const fe *v) {
    const uint64_t l0 = v->d[0], l1 = v->d[1], l2 = v->d[2], l3 = v->d[3];
    w[0 * stride] = (b << 24) | (uint32_t)(l3 >> 40);
    w[1 * stride] = (uint32_t)(l3 >> 8);
    w[2 * stride] = ((uint32_t)l3 << 24) | (uint32_t)(l2 >> 40);
    w[3 * stride] = (uint32_t)(l2 >> 8);
    w[4 * stride] = ((uint32_t)l2 << 24) | (uint32_t)(l1 >> 40);
    w[5 * stride] = (uint32_t)(l1 >> 8);
    w[6 * stride] = ((uint32_t)l1 << 24) | (uint32_t)(l0 >> 40);
    w[7 * stride] = (uint32_t)(l0 >> 8);
    w[8 * stride] = (uint32_t)l0 << 24;
}

/* SEC1 compressed key (prefix || x): 33 bytes, one block. */
static inline void put_compressed(uint32_t *grp, int lane, uint32_t prefix, const fe *x) {
    uint32_t *w = grp + lane;
    put_words(w, 16, prefix, x);
    w[8 * 16] |= 0x800000u;
    w[15 * 16] = 33 * 8;
}

/* SEC1 uncompressed key (04 || x || y): 65 bytes, two blocks. */
static inline void put_uncompressed(uint32_t *grp, int lane, const fe *x, const fe *y) {
    uint32_t *w = grp + lane;
    put_words(w, 16, 4, x);
    uint32_t last_x = w[8 * 16];
    put_words(w + 8 * 16, 16, 0, y); /* words 8..16: y's bytes shifted by one */
    w[8 * 16] |= last_x;
    w[16 * 16] |= 0x800000u;
    w[31 * 16] = 65 * 8;
}

/* ---- target ranges over V = hash160 || checksum (192 bits) ---- */

typedef struct {
    Py_ssize_t n;
    uint64_t *lo64, *hi64;           /* top 64 bits of the inclusive bounds: the coarse test */
    const unsigned char *bounds;     /* n records of 48 bytes: low (24) and high (24), inclusive */
} ranges_t;

static inline uint64_t be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

/* Exact test of a hash160 whose top 64 bits passed the coarse test: compute its checksum. */
static int exact_match(const ranges_t *r, const uint32_t h[5]) {
    unsigned char payload[21], v[24], d1[32], d2[32];
    payload[0] = 0;
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) payload[1 + 4 * i + j] = (unsigned char)(h[i] >> (8 * j));
    sha256_bytes(payload, 21, d1);
    sha256_bytes(d1, 32, d2);
    memcpy(v, payload + 1, 20);
    memcpy(v + 20, d2, 4);
    Py_ssize_t lo = 0, hi = r->n - 1, k = -1; /* last range whose low bound <= v */
    while (lo <= hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (memcmp(r->bounds + 48 * mid, v, 24) <= 0) { k = mid; lo = mid + 1; }
        else hi = mid - 1;
    }
    return k >= 0 && memcmp(v, r->bounds + 48 * k + 24, 24) <= 0;
}

static inline int coarse_match(const ranges_t *r, uint64_t top) {
    if (r->n == 1) return top - r->lo64[0] <= r->hi64[0] - r->lo64[0];
    if (top < r->lo64[0] || top > r->hi64[r->n - 1]) return 0;
    Py_ssize_t lo = 0, hi = r->n - 1, k = 0;
    while (lo <= hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (r->lo64[mid] <= top) { k = mid; lo = mid + 1; }
        else hi = mid - 1;
    }
    return top <= r->hi64[k];
}

/* ---- hits ---- */

typedef struct {
    uint64_t *v; /* offset * 6 + candidate */
    size_t n, cap, limit;
    int oom;
} hits_t;

static int hits_add(hits_t *h, uint64_t v) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 16;
        uint64_t *p = realloc(h->v, cap * sizeof *p);
        if (!p) { h->oom = 1; return 0; }
        h->v = p;
        h->cap = cap;
    }
    h->v[h->n++] = v;
    return h->n < h->limit;
}

/* ---- the walk ---- */

static const fe BETA = {{0xC1396C28719501EEULL, 0x9CF0497512F58995ULL, 0x6E64479EAC3434E9ULL,
                         0x7AE96A2B657C0710ULL}};

#define CHUNK_POINTS 16 /* 96 messages = 6 groups of 16 lanes */

typedef struct {
    int half;
    const fe *tx, *ty; /* jG for j = 1..half, then (2 half + 1) G */
    fe *d, *pr;        /* half + 1 denominators, prefix products then inverses */
    fe *px, *py;       /* 2 half + 1 points of the batch, offset order */
    uint32_t *words;   /* message groups for one chunk */
    hash_fn hash;
    int compressed;
    const ranges_t *ranges;
} walk_t;

/* Points of the batch around (cx, cy) into px/py and the next centre into (nx, ny);
 * 0 if a denominator vanishes (the caller then takes the slow path). */
static int batch(walk_t *w, const fe *cx, const fe *cy, fe *nx, fe *ny) {
    const int H = w->half;
    for (int i = 0; i <= H; i++) fe_sub(&w->d[i], &w->tx[i], cx);
    w->pr[0] = w->d[0];
    for (int i = 1; i <= H; i++) fe_mul(&w->pr[i], &w->pr[i - 1], &w->d[i]);
    if (fe_is_zero(&w->pr[H])) return 0;
    fe inv;
    fe_inv(&inv, &w->pr[H]);
    for (int i = H; i > 0; i--) {
        fe_mul(&w->pr[i], &inv, &w->pr[i - 1]); /* 1 / d[i] */
        fe_mul(&inv, &inv, &w->d[i]);
    }
    w->pr[0] = inv;
    fe lam, t, x3;
    for (int i = 0; i < H; i++) {
        /* C + jG and C - jG, j = i + 1: slopes (ty - cy) / d and (-ty - cy) / d */
        fe_sub(&t, &w->ty[i], cy);
        fe_mul(&lam, &t, &w->pr[i]);
        fe_sqr(&x3, &lam);
        fe_sub(&x3, &x3, cx);
        fe_sub(&x3, &x3, &w->tx[i]);
        fe_sub(&t, cx, &x3);
        fe_mul(&t, &lam, &t);
        fe_sub(&w->py[H + 1 + i], &t, cy);
        w->px[H + 1 + i] = x3;

        fe_add(&t, &w->ty[i], cy);
        fe_mul(&lam, &t, &w->pr[i]); /* minus the slope; its square is the same */
        fe_sqr(&x3, &lam);
        fe_sub(&x3, &x3, cx);
        fe_sub(&x3, &x3, &w->tx[i]);
        fe_sub(&t, &x3, cx);
        fe_mul(&t, &lam, &t);
        fe_sub(&w->py[H - 1 - i], &t, cy);
        w->px[H - 1 - i] = x3;
    }
    w->px[H] = *cx;
    w->py[H] = *cy;
    fe_sub(&t, &w->ty[H], cy);
    fe_mul(&lam, &t, &w->pr[H]);
    fe_sqr(&x3, &lam);
    fe_sub(&x3, &x3, cx);
    fe_sub(&x3, &x3, &w->tx[H]);
    fe_sub(&t, cx, &x3);
    fe_mul(&t, &lam, &t);
    fe_sub(ny, &t, cy);
    *nx = x3;
    fe_normalize(nx);
    fe_normalize(ny);
    return 1;
}

/* Hash the six candidates of points px/py[0..m) (offsets base..), recording hits in order.
 * Returns 0 once the hit limit is reached. */
static int hash_points(walk_t *w, int m, uint64_t base, hits_t *hits) {
    const int nblk = w->compressed ? 1 : 2;
    const size_t group_words = (size_t)nblk * 16 * 16;
    uint32_t out[5][16] __attribute__((aligned(64)));
    for (int p0 = 0; p0 < m; p0 += CHUNK_POINTS) {
        int np = m - p0 < CHUNK_POINTS ? m - p0 : CHUNK_POINTS;
        for (int i = 0; i < np; i++) {
            fe x[3], y = w->py[p0 + i], ny, s;
            x[0] = w->px[p0 + i];
            fe_normalize(&x[0]);
            fe_normalize(&y);
            fe_mul(&x[1], &x[0], &BETA);
            fe_normalize(&x[1]);
            fe_add(&s, &x[0], &x[1]);
            fe_normalize(&s);
            const fe zero = {{0, 0, 0, 0}};
            fe_sub(&x[2], &zero, &s); /* beta^2 x = -x - beta x */
            fe_normalize(&x[2]);
            if (!w->compressed) {
                fe_sub(&ny, &zero, &y);
                fe_normalize(&ny);
            }
            uint32_t even = 2 + (uint32_t)(y.d[0] & 1), odd = even ^ 1u;
            for (int e = 0; e < 3; e++) {
                for (int neg = 0; neg < 2; neg++) {
                    int k = i * 6 + 2 * e + neg;
                    uint32_t *grp = w->words + (size_t)(k >> 4) * group_words;
                    if (w->compressed) put_compressed(grp, k & 15, neg ? odd : even, &x[e]);
                    else put_uncompressed(grp, k & 15, &x[e], neg ? &ny : &y);
                }
            }
        }
        int nm = np * 6;
        for (int g = 0; g * 16 < nm; g++) {
            w->hash(w->words + (size_t)g * group_words, nblk, out);
            for (int lane = 0; lane < 16 && g * 16 + lane < nm; lane++) {
                uint64_t top = ((uint64_t)BSWAP32(out[0][lane]) << 32) | BSWAP32(out[1][lane]);
                if (!coarse_match(w->ranges, top)) continue;
                uint32_t h[5] = {out[0][lane], out[1][lane], out[2][lane], out[3][lane], out[4][lane]};
                if (!exact_match(w->ranges, h)) continue;
                uint64_t k = (uint64_t)(g * 16 + lane);
                if (!hits_add(hits, (base + (uint64_t)p0 + k / 6) * 6 + k % 6)) return 0;
            }
        }
    }
    return 1;
}

/* Walk `count` offsets from the batch centred on (cx, cy). Returns the offset of the first
 * degenerate batch (its centre left in cx, cy), or -1 when done or the hit limit is reached. */
static long long walk_range(walk_t *w, fe *cx, fe *cy, unsigned long long count, hits_t *hits) {
    const unsigned long long width = 2ULL * (unsigned long long)w->half + 1;
    fe nx, ny;
    for (unsigned long long base = 0; base < count; base += width) {
        if (!batch(w, cx, cy, &nx, &ny)) return (long long)base;
        int m = count - base < width ? (int)(count - base) : (int)width;
        if (!hash_points(w, m, base, hits)) return -1;
        *cx = nx;
        *cy = ny;
    }
    return -1;
}

/* ---- Python interface ---- */

static PyObject *py_impls(PyObject *self, PyObject *unused) {
    PyObject *out = PyList_New(0);
    if (!out) return NULL;
    for (int i = 0; i < N_IMPLS; i++) {
        if (!IMPLS[i].available) continue;
        PyObject *s = PyUnicode_FromString(IMPLS[i].name);
        if (!s || PyList_Append(out, s) < 0) { Py_XDECREF(s); Py_DECREF(out); return NULL; }
        Py_DECREF(s);
    }
    return out;
}

static hash_fn impl_arg(PyObject *impl) {
    const char *name = NULL;
    if (impl != Py_None) {
        name = PyUnicode_AsUTF8(impl);
        if (!name) return NULL;
    }
    hash_fn fn = find_impl(name);
    if (!fn) PyErr_Format(PyExc_ValueError, "hash implementation %R is not available here", impl);
    return fn;
}

PyDoc_STRVAR(scan_doc,
"scan(cx, cy, count, table, half, compressed, ranges, limit, impl=None)\n"
"--\n\n"
"Walk `count` offsets from the batch centred on (cx, cy) (32-byte big-endian coordinates).\n"
"`table`: (half + 1) records of 64 bytes (x || y) for jG, j = 1..half, then (2 half + 1) G.\n"
"`ranges`: 48-byte records (low || high, inclusive, 24-byte big-endian) over hash160||checksum.\n"
"Returns (hits, degenerate, centre): hits as (offset, candidate) in order (at most `limit`);\n"
"degenerate is the offset of a batch that needs the slow path, or -1, and centre its (x, y).");

static PyObject *py_scan(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"cx", "cy", "count", "table", "half", "compressed", "ranges", "limit",
                             "impl", NULL};
    Py_buffer bcx, bcy, btable, branges;
    unsigned long long count, limit;
    int half, compressed;
    PyObject *impl = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*y*Ky*ipy*K|O", kwlist, &bcx, &bcy, &count,
                                     &btable, &half, &compressed, &branges, &limit, &impl))
        return NULL;
    PyObject *result = NULL;
    walk_t w = {0};
    ranges_t r = {0};
    hits_t hits = {0};
    fe *mem = NULL;
    hash_fn fn = impl_arg(impl);
    if (!fn) goto done;
    if (bcx.len != 32 || bcy.len != 32) {
        PyErr_SetString(PyExc_ValueError, "centre coordinates must be 32 bytes each");
        goto done;
    }
    if (half < 1 || half > 8192 || btable.len != (Py_ssize_t)(half + 1) * 64) {
        PyErr_SetString(PyExc_ValueError, "table must hold half + 1 points of 64 bytes, 1 <= half <= 8192");
        goto done;
    }
    if (branges.len == 0 || branges.len % 48 != 0) {
        PyErr_SetString(PyExc_ValueError, "ranges must be a non-empty sequence of 48-byte records");
        goto done;
    }
    if (limit < 1) {
        PyErr_SetString(PyExc_ValueError, "limit must be at least 1");
        goto done;
    }
    r.n = branges.len / 48;
    r.bounds = branges.buf;
    r.lo64 = malloc(2 * r.n * sizeof(uint64_t));
    size_t npts = 2 * (size_t)half + 1;
    /* tx, ty, d, pr: half + 1 each; px, py: npts each */
    mem = malloc((4 * ((size_t)half + 1) + 2 * npts) * sizeof(fe));
    w.words = aligned_alloc(64, (size_t)CHUNK_POINTS * 6 / 16 * 2 * 16 * 16 * sizeof(uint32_t));
    if (!r.lo64 || !mem || !w.words) { PyErr_NoMemory(); goto done; }
    r.hi64 = r.lo64 + r.n;
    for (Py_ssize_t i = 0; i < r.n; i++) {
        r.lo64[i] = be64(r.bounds + 48 * i);
        r.hi64[i] = be64(r.bounds + 48 * i + 24);
    }
    fe *tx = mem, *ty = tx + half + 1;
    w.d = ty + half + 1;
    w.pr = w.d + half + 1;
    w.px = w.pr + half + 1;
    w.py = w.px + npts;
    for (int i = 0; i <= half; i++) {
        fe_from_be(&tx[i], (const unsigned char *)btable.buf + 64 * i);
        fe_from_be(&ty[i], (const unsigned char *)btable.buf + 64 * i + 32);
    }
    memset(w.words, 0, (size_t)CHUNK_POINTS * 6 / 16 * 2 * 16 * 16 * sizeof(uint32_t));
    w.tx = tx;
    w.ty = ty;
    w.half = half;
    w.hash = fn;
    w.compressed = compressed;
    w.ranges = &r;
    hits.limit = limit;
    fe cx, cy;
    fe_from_be(&cx, bcx.buf);
    fe_from_be(&cy, bcy.buf);
    long long degenerate;
    Py_BEGIN_ALLOW_THREADS
    degenerate = walk_range(&w, &cx, &cy, count, &hits);
    Py_END_ALLOW_THREADS
    if (hits.oom) { PyErr_NoMemory(); goto done; }
    PyObject *list = PyList_New((Py_ssize_t)hits.n);
    if (!list) goto done;
    for (size_t i = 0; i < hits.n; i++) {
        PyObject *t = Py_BuildValue("(KI)", (unsigned long long)(hits.v[i] / 6), (unsigned)(hits.v[i] % 6));
        if (!t) { Py_DECREF(list); goto done; }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    if (degenerate >= 0) {
        unsigned char bx[32], by[32];
        fe_normalize(&cx);
        fe_normalize(&cy);
        fe_to_be(bx, &cx);
        fe_to_be(by, &cy);
        result = Py_BuildValue("(NL(y#y#))", list, degenerate, bx, (Py_ssize_t)32, by, (Py_ssize_t)32);
    } else {
        result = Py_BuildValue("(NLO)", list, -1LL, Py_None);
    }
done:
    free(r.lo64);
    free(mem);
    free(w.words);
    free(hits.v);
    PyBuffer_Release(&bcx);
    PyBuffer_Release(&bcy);
    PyBuffer_Release(&btable);
    PyBuffer_Release(&branges);
    return result;
}

PyDoc_STRVAR(hash160_doc,
"hash160(pubkey, impl=None)\n--\n\n"
"RIPEMD-160(SHA-256(pubkey)) of a 33-byte compressed or 65-byte uncompressed SEC1 key,\n"
"through the same message layout and hashing code as the kernel (for tests).");

static PyObject *py_hash160(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"pubkey", "impl", NULL};
    Py_buffer b;
    PyObject *impl = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*|O", kwlist, &b, &impl)) return NULL;
    PyObject *result = NULL;
    hash_fn fn = impl_arg(impl);
    const unsigned char *p = b.buf;
    uint32_t words[2 * 16 * 16] __attribute__((aligned(64)));
    uint32_t out[5][16] __attribute__((aligned(64)));
    memset(words, 0, sizeof words);
    if (!fn) goto done;
    fe x, y;
    int nblk;
    if (b.len == 33 && (p[0] == 2 || p[0] == 3)) {
        fe_from_be(&x, p + 1);
        for (int lane = 0; lane < 16; lane++) put_compressed(words, lane, p[0], &x);
        nblk = 1;
    } else if (b.len == 65 && p[0] == 4) {
        fe_from_be(&x, p + 1);
        fe_from_be(&y, p + 33);
        for (int lane = 0; lane < 16; lane++) put_uncompressed(words, lane, &x, &y);
        nblk = 2;
    } else {
        PyErr_SetString(PyExc_ValueError, "pubkey must be 33 bytes (02/03) or 65 bytes (04)");
        goto done;
    }
    fn(words, nblk, out);
    unsigned char h[20];
    for (int lane = 0; lane < 16; lane++) {
        unsigned char g[20];
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 4; j++) g[4 * i + j] = (unsigned char)(out[i][lane] >> (8 * j));
        if (lane == 0) memcpy(h, g, 20);
        else if (memcmp(h, g, 20) != 0) {
            PyErr_SetString(PyExc_AssertionError, "hash lanes disagree");
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize((const char *)h, 20);
done:
    PyBuffer_Release(&b);
    return result;
}

PyDoc_STRVAR(matches_doc,
"matches(ranges, h160)\n--\n\n"
"The kernel's range test (coarse, then exact with the checksum) on one 20-byte hash160 (for tests).");

static PyObject *py_matches(PyObject *self, PyObject *args) {
    Py_buffer branges, bh;
    if (!PyArg_ParseTuple(args, "y*y*", &branges, &bh)) return NULL;
    PyObject *result = NULL;
    ranges_t r = {0};
    if (branges.len == 0 || branges.len % 48 != 0 || bh.len != 20) {
        PyErr_SetString(PyExc_ValueError, "need 48-byte range records and a 20-byte hash160");
        goto done;
    }
    r.n = branges.len / 48;
    r.bounds = branges.buf;
    r.lo64 = malloc(2 * r.n * sizeof(uint64_t));
    if (!r.lo64) { PyErr_NoMemory(); goto done; }
    r.hi64 = r.lo64 + r.n;
    for (Py_ssize_t i = 0; i < r.n; i++) {
        r.lo64[i] = be64(r.bounds + 48 * i);
        r.hi64[i] = be64(r.bounds + 48 * i + 24);
    }
    const unsigned char *p = bh.buf;
    uint32_t h[5]; /* the RIPEMD-160 state words the kernel sees: little-endian digest words */
    for (int i = 0; i < 5; i++)
        h[i] = (uint32_t)p[4 * i] | ((uint32_t)p[4 * i + 1] << 8) | ((uint32_t)p[4 * i + 2] << 16) |
               ((uint32_t)p[4 * i + 3] << 24);
    uint64_t top = ((uint64_t)BSWAP32(h[0]) << 32) | BSWAP32(h[1]);
    result = PyBool_FromLong(coarse_match(&r, top) && exact_match(&r, h));
done:
    free(r.lo64);
    PyBuffer_Release(&branges);
    PyBuffer_Release(&bh);
    return result;
}

static PyMethodDef methods[] = {
    {"matches", py_matches, METH_VARARGS, matches_doc},
    {"scan", (PyCFunction)(void (*)(void))py_scan, METH_VARARGS | METH_KEYWORDS, scan_doc},
    {"hash160", (PyCFunction)(void (*)(void))py_hash160, METH_VARARGS | METH_KEYWORDS, hash160_doc},
    {"impls", py_impls, METH_NOARGS, "Hash implementations usable on this CPU, fastest first."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "Native vanity search kernel (see xwpy/apps/vanitygen/native.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    detect_impls();
    return PyModule_Create(&module);
}
