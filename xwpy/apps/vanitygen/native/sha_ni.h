/* SHA-256 with the x86 SHA extensions, two messages interleaved so that the latency of one
 * message's rounds hides behind the other's. Same structure-of-arrays input as hash_lanes.h.
 *
 * The SHA-NI instructions keep the state as two registers, ABEF and CDGH (A in the top lane);
 * sha256rnds2 does two rounds and sha256msg1/msg2 compute the message schedule four words at a
 * time. */

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define SHANI_ATTR __attribute__((target("sha,sse4.1")))

SHANI_ATTR static void shani_lanes_x2(const uint32_t *words, int nblk, int lane, uint32_t out[8][16]) {
    __m128i abef[2], cdgh[2];
    for (int m = 0; m < 2; m++) {
        __m128i t = _mm_loadu_si128((const __m128i *)&SHA256_IV[0]); /* lanes A B C D */
        __m128i u = _mm_loadu_si128((const __m128i *)&SHA256_IV[4]); /* lanes E F G H */
        t = _mm_shuffle_epi32(t, 0xB1);                               /* B A D C */
        u = _mm_shuffle_epi32(u, 0x1B);                               /* H G F E */
        abef[m] = _mm_alignr_epi8(t, u, 8);                           /* F E B A */
        cdgh[m] = _mm_blend_epi16(u, t, 0xF0);                        /* H G D C */
    }
    for (int blk = 0; blk < nblk; blk++) {
        __m128i msg[2][4], save0[2], save1[2];
        for (int m = 0; m < 2; m++) {
            const uint32_t *w = words + blk * 16 * 16 + lane + m;
            for (int q = 0; q < 4; q++)
                msg[m][q] = _mm_set_epi32((int)w[(4 * q + 3) * 16], (int)w[(4 * q + 2) * 16],
                                          (int)w[(4 * q + 1) * 16], (int)w[(4 * q) * 16]);
            save0[m] = abef[m];
            save1[m] = cdgh[m];
        }
#pragma GCC unroll 16
        for (int g = 0; g < 16; g++) {
            __m128i k = _mm_loadu_si128((const __m128i *)&SHA256_K[4 * g]);
            for (int m = 0; m < 2; m++) {
                if (g >= 4) {
                    __m128i t = _mm_sha256msg1_epu32(msg[m][g & 3], msg[m][(g + 1) & 3]);
                    t = _mm_add_epi32(t, _mm_alignr_epi8(msg[m][(g + 3) & 3], msg[m][(g + 2) & 3], 4));
                    msg[m][g & 3] = _mm_sha256msg2_epu32(t, msg[m][(g + 3) & 3]);
                }
                __m128i wk = _mm_add_epi32(msg[m][g & 3], k);
                cdgh[m] = _mm_sha256rnds2_epu32(cdgh[m], abef[m], wk);
                wk = _mm_shuffle_epi32(wk, 0x0E);
                /* cdgh now holds the ABEF of two rounds later; the old ABEF is its CDGH */
                abef[m] = _mm_sha256rnds2_epu32(abef[m], cdgh[m], wk);
            }
        }
        for (int m = 0; m < 2; m++) {
            abef[m] = _mm_add_epi32(abef[m], save0[m]);
            cdgh[m] = _mm_add_epi32(cdgh[m], save1[m]);
        }
    }
    for (int m = 0; m < 2; m++) {
        uint32_t st[8];
        __m128i t = _mm_shuffle_epi32(abef[m], 0x1B);      /* A B E F */
        __m128i u = _mm_shuffle_epi32(cdgh[m], 0xB1);      /* G H C D */
        __m128i lo = _mm_blend_epi16(t, u, 0xF0);          /* A B C D */
        __m128i hi = _mm_alignr_epi8(u, t, 8);             /* E F G H */
        _mm_storeu_si128((__m128i *)&st[0], lo);
        _mm_storeu_si128((__m128i *)&st[4], hi);
        for (int i = 0; i < 8; i++) out[i][lane + m] = st[i];
    }
}

SHANI_ATTR static void shani_sha256_x16(const uint32_t *words, int nblk, uint32_t out[8][16]) {
    for (int lane = 0; lane < 16; lane += 2) shani_lanes_x2(words, nblk, lane, out);
}
#endif
