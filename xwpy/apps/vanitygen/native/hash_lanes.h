/* SHA-256 and RIPEMD-160 on 16 independent messages at once, written with GCC/Clang vector
 * extensions so one source serves every instruction set: this header is included once per target
 * with LANES_ATTR (a target attribute, or nothing) and LANES_NAME (a suffixing macro).
 *
 * Messages arrive "structure of arrays": words[k][lane] is 32-bit word k (host order, k counting
 * across blocks) of message `lane`, so a load of words[k] is one vector of 16 lanes. */

#ifndef XWPY_V16_TYPES
#define XWPY_V16_TYPES
typedef uint32_t v16u __attribute__((vector_size(64)));
#endif

#define VROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define VROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

LANES_ATTR static void LANES_NAME(sha256_x16)(const uint32_t *words, int nblk, uint32_t out[8][16]) {
    v16u s[8];
    for (int i = 0; i < 8; i++) s[i] = (v16u){0} + SHA256_IV[i];
    for (int blk = 0; blk < nblk; blk++) {
        v16u w[16];
        for (int i = 0; i < 16; i++) memcpy(&w[i], words + (blk * 16 + i) * 16, sizeof(v16u));
        v16u a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
#pragma GCC unroll 64
        for (int i = 0; i < 64; i++) {
            if (i >= 16) {
                v16u x = w[(i + 1) & 15], y = w[(i + 14) & 15];
                w[i & 15] += (VROR(x, 7) ^ VROR(x, 18) ^ (x >> 3)) + w[(i + 9) & 15] +
                             (VROR(y, 17) ^ VROR(y, 19) ^ (y >> 10));
            }
            v16u t1 = h + (VROR(e, 6) ^ VROR(e, 11) ^ VROR(e, 25)) + ((e & f) ^ (~e & g)) +
                      SHA256_K[i] + w[i & 15];
            v16u t2 = (VROR(a, 2) ^ VROR(a, 13) ^ VROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        s[0] += a; s[1] += b; s[2] += c; s[3] += d; s[4] += e; s[5] += f; s[6] += g; s[7] += h;
    }
    for (int i = 0; i < 8; i++) memcpy(out[i], &s[i], sizeof(v16u));
}

#define VRMD_STEP(F, A, B, C, D, E, X, K, S) \
    do { v16u t_ = A + F(B, C, D) + (X) + (K); t_ = VROL(t_, S) + E; \
         A = E; E = D; D = VROL(C, 10); C = B; B = t_; } while (0)

/* RIPEMD-160 of the 32-byte SHA-256 digests given as state words (big-endian words of the
 * digest), which RIPEMD-160 reads as little-endian words: hence the byte swap. */
LANES_ATTR static void LANES_NAME(rmd160_x16)(uint32_t sha[8][16], uint32_t out[5][16]) {
    v16u x[16];
    for (int i = 0; i < 8; i++) {
        v16u v;
        memcpy(&v, sha[i], sizeof v);
        x[i] = ((v >> 24) & 0xffu) | ((v >> 8) & 0xff00u) | ((v << 8) & 0xff0000u) | (v << 24);
    }
    for (int i = 8; i < 16; i++) x[i] = (v16u){0};
    x[8] += 0x80u;
    x[14] += 256u;
    v16u al = (v16u){0} + RMD_IV[0], bl = (v16u){0} + RMD_IV[1], cl = (v16u){0} + RMD_IV[2],
         dl = (v16u){0} + RMD_IV[3], el = (v16u){0} + RMD_IV[4];
    v16u ar = al, br = bl, cr = cl, dr = dl, er = el;
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) {
        VRMD_STEP(RMD_F0, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[0], RMD_SL[j]);
        VRMD_STEP(RMD_F4, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[0], RMD_SR[j]);
    }
#pragma GCC unroll 16
    for (int j = 16; j < 32; j++) {
        VRMD_STEP(RMD_F1, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[1], RMD_SL[j]);
        VRMD_STEP(RMD_F3, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[1], RMD_SR[j]);
    }
#pragma GCC unroll 16
    for (int j = 32; j < 48; j++) {
        VRMD_STEP(RMD_F2, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[2], RMD_SL[j]);
        VRMD_STEP(RMD_F2, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[2], RMD_SR[j]);
    }
#pragma GCC unroll 16
    for (int j = 48; j < 64; j++) {
        VRMD_STEP(RMD_F3, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[3], RMD_SL[j]);
        VRMD_STEP(RMD_F1, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[3], RMD_SR[j]);
    }
#pragma GCC unroll 16
    for (int j = 64; j < 80; j++) {
        VRMD_STEP(RMD_F4, al, bl, cl, dl, el, x[RMD_RL[j]], RMD_KL[4], RMD_SL[j]);
        VRMD_STEP(RMD_F0, ar, br, cr, dr, er, x[RMD_RR[j]], RMD_KR[4], RMD_SR[j]);
    }
    v16u h0 = (v16u){0} + RMD_IV[0], h1 = (v16u){0} + RMD_IV[1], h2 = (v16u){0} + RMD_IV[2],
         h3 = (v16u){0} + RMD_IV[3], h4 = (v16u){0} + RMD_IV[4];
    v16u r0 = h1 + cl + dr, r1 = h2 + dl + er, r2 = h3 + el + ar, r3 = h4 + al + br, r4 = h0 + bl + cr;
    memcpy(out[0], &r0, sizeof r0);
    memcpy(out[1], &r1, sizeof r1);
    memcpy(out[2], &r2, sizeof r2);
    memcpy(out[3], &r3, sizeof r3);
    memcpy(out[4], &r4, sizeof r4);
}

LANES_ATTR static void LANES_NAME(hash160_x16)(const uint32_t *words, int nblk, uint32_t out[5][16]) {
    uint32_t sha[8][16] __attribute__((aligned(64)));
    LANES_NAME(sha256_x16)(words, nblk, sha);
    LANES_NAME(rmd160_x16)(sha, out);
}

#undef VRMD_STEP
#undef VROR
#undef VROL
