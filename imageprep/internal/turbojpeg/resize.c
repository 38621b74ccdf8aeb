// resize.c: decode, resize and convert a JPEG in one call.
//
// libjpeg-turbo decodes the JPEG into Y, Cb and Cr planes at a DCT scale M/8 chosen by the
// caller (no chroma upsampling, no colour conversion). Each plane is resized to its size in the
// output image with a separable triangle (anti-aliased bilinear) filter — the filter of Pillow's
// BILINEAR resize: its support widens with the scale factor when shrinking, so every source
// pixel contributes. libjpeg-turbo's SIMD code then upsamples the chroma and converts to RGB.
//
// The resampler works in fixed point: weights are int16 with PREC fractional bits, sums are
// int32, and the horizontal pass rounds to 8 bits between the passes, as Pillow does. On x86-64
// both passes use SSE2 (part of the x86-64 baseline, so no run-time dispatch); elsewhere, and
// when cd_set_scalar asks for it, plain loops compute the same integers.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define CD_HAVE_SSE2 1
#else
#define CD_HAVE_SSE2 0
#endif

#include "resize.h"

#define PREC 14                  // fractional bits of a weight: 1.0 is 1 << PREC
#define HALF (1 << (PREC - 1))   // rounding term
#define HCHUNK 8                 // horizontal taps are padded to a multiple of 8 (one SSE2 madd)
#define SLACK 16                 // readable bytes after every buffer the SSE2 loops load from

// taps: for every output sample, the first input sample and n weights (n is the same for all
// outputs; zero weights pad shorter windows).
typedef struct {
	int *first;
	int16_t *w;
	int n;
	size_t first_cap, w_cap;
	// what the taps were made for (make_taps keeps them when asked again)
	int in, out, chunk;
	double extent;
} taps;

struct cd_decoder {
	tjhandle tj;
	int scalar;
	unsigned char *planes; // decoded planes
	size_t planes_cap;
	unsigned char *small; // resized planes
	size_t small_cap;
	unsigned char *mid; // horizontal pass output
	size_t mid_cap;
	double *win; // one output's float weights while taps are computed
	size_t win_cap;
	taps tx[2], ty[2]; // luma, chroma
	char msg[256];
};

cd_decoder *cd_new(void) {
	cd_decoder *d = calloc(1, sizeof *d);
	if (d == NULL) {
		return NULL;
	}
	d->tj = tjInitDecompress();
	if (d->tj == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

void cd_free(cd_decoder *d) {
	if (d == NULL) {
		return;
	}
	if (d->tj != NULL) {
		tjDestroy(d->tj);
	}
	free(d->planes);
	free(d->small);
	free(d->mid);
	free(d->win);
	for (int i = 0; i < 2; i++) {
		free(d->tx[i].first);
		free(d->tx[i].w);
		free(d->ty[i].first);
		free(d->ty[i].w);
	}
	free(d);
}

void cd_set_scalar(cd_decoder *d, int scalar) { d->scalar = scalar; }

const char *cd_message(const cd_decoder *d) { return d->msg; }

// grow makes *p at least need bytes (contents are not kept) and zeroes new memory, so that
// padding the SSE2 loops read past the data is never uninitialised.
static int grow(void **p, size_t *cap, size_t need) {
	if (*cap >= need) {
		return 0;
	}
	void *q = malloc(need);
	if (q == NULL) {
		return -1;
	}
	memset(q, 0, need);
	free(*p);
	*p = q;
	*cap = need;
	return 0;
}

static int fail(cd_decoder *d, int rc, const char *msg) {
	snprintf(d->msg, sizeof d->msg, "%s", msg);
	return rc;
}

// tj_fail records the failure of the last TurboJPEG call and replaces the handle with a new
// one: a handle that has reported a failure is never used again. TurboJPEG 2.1's
// tjDecompressHeader3 returns from a fatal error (a header that ends early, as in a truncated
// file) without aborting the decompressor, so the handle stays in the middle of a header; the
// next tjDecompressHeader3 on it then reads the stale marker state, reports success and leaves
// the size unset (0x0), and the caller would send a good photo down another decoding path.
// Other calls abort on failure, but a new handle costs a few microseconds, only on failures,
// and leaves nothing to reason about.
static int tj_fail(cd_decoder *d) {
	int rc = tjGetErrorCode(d->tj) == TJERR_WARNING ? CD_WARNING : CD_ERROR;
	fail(d, rc, tjGetErrorStr2(d->tj));
	tjDestroy(d->tj);
	d->tj = tjInitDecompress(); // NULL when out of memory: the next call retries (have_tj)
	return rc;
}

// have_tj makes sure d has a TurboJPEG handle (tj_fail may have failed to replace it).
static int have_tj(cd_decoder *d) {
	if (d->tj == NULL && (d->tj = tjInitDecompress()) == NULL) {
		return fail(d, CD_NOMEM, "cannot create a TurboJPEG handle (out of memory)");
	}
	return CD_OK;
}

int cd_header(cd_decoder *d, const unsigned char *jpeg, unsigned long len, int *w, int *h, int *subsamp, int *cs) {
	int rc = have_tj(d);
	if (rc != CD_OK) {
		return rc;
	}
	if (tjDecompressHeader3(d->tj, jpeg, len, w, h, subsamp, cs) != 0) {
		tj_fail(d);
		return CD_ERROR;
	}
	return CD_OK;
}

// make_taps computes the weights that resample in samples spanning extent (≤ in: a padded
// plane has samples beyond the image) to out samples. Every output gets the same number of
// taps (the widest window after dropping zero weights), shifted to stay inside the plane, and
// rounded up to a multiple of chunk with zero weights (which may reach up to chunk-1 samples
// past the plane: callers keep those bytes readable). The quantised weights of every output
// sum to exactly 1 << PREC.
static int make_taps(cd_decoder *d, taps *t, int in, double extent, int out, int chunk) {
	if (t->n > 0 && t->in == in && t->extent == extent && t->out == out && t->chunk == chunk) {
		return 0; // the second chroma plane, and consecutive photos of one size
	}
	t->n = 0;
	double scale = extent / out;
	double fscale = scale > 1 ? scale : 1;
	double support = fscale; // the triangle filter has support 1
	size_t wmax = (size_t)(2 * support) + 3;
	int outp = (out + 3) / 4 * 4; // the SSE2 horizontal pass computes four outputs per step
	if (grow((void **)&d->win, &d->win_cap, wmax * sizeof(double)) != 0 ||
	    grow((void **)&t->first, &t->first_cap, (size_t)outp * sizeof(int)) != 0) {
		return -1;
	}
	// First pass: each output's window [lo, hi) without zero weights; n is the widest.
	int n = 1;
	for (int o = 0; o < out; o++) {
		double center = (o + 0.5) * scale;
		int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
		lo = lo < 0 ? 0 : lo;
		hi = hi > in ? in : hi;
		while (lo < hi && 1 - fabs((lo + 0.5 - center) / fscale) <= 0) {
			lo++;
		}
		while (hi > lo && 1 - fabs((hi - 1 + 0.5 - center) / fscale) <= 0) {
			hi--;
		}
		if (hi <= lo) { // cannot happen for out ≥ 1, extent > 0; keep the nearest sample
			lo = (int)center < in - 1 ? (int)center : in - 1;
			hi = lo + 1;
		}
		t->first[o] = lo; // the window start for now; the tap start below
		n = hi - lo > n ? hi - lo : n;
	}
	n = n < in ? n : in;
	int np = (n + chunk - 1) / chunk * chunk;
	if (grow((void **)&t->w, &t->w_cap, (size_t)outp * np * sizeof(int16_t)) != 0) {
		return -1;
	}
	memset(t->w, 0, (size_t)outp * np * sizeof(int16_t));
	for (int o = out; o < outp; o++) {
		t->first[o] = 0; // padding outputs: zero weights from the start of the row
	}
	// Second pass: the weights of each window, normalised, quantised, placed from first.
	for (int o = 0; o < out; o++) {
		double center = (o + 0.5) * scale;
		int lo = t->first[o];
		int first = lo < in - n ? lo : in - n;
		int16_t *row = t->w + (size_t)o * np;
		double sum = 0;
		int cnt = 0;
		for (int i = lo; i < lo + n && i < in; i++) {
			double v = 1 - fabs((i + 0.5 - center) / fscale);
			v = v > 0 ? v : 0;
			if (v == 0 && cnt > 0) {
				break;
			}
			d->win[cnt++] = v;
			sum += v;
		}
		if (sum <= 0) {
			d->win[0] = 1, cnt = 1, sum = 1;
		}
		int total = 0, big = 0;
		for (int i = 0; i < cnt; i++) {
			int q = (int)lrint(d->win[i] / sum * (1 << PREC));
			row[lo - first + i] = (int16_t)q;
			total += q;
			if (q > row[lo - first + big]) {
				big = i;
			}
		}
		row[lo - first + big] += (int16_t)((1 << PREC) - total);
		t->first[o] = first;
	}
	t->n = np;
	t->in = in, t->extent = extent, t->out = out, t->chunk = chunk;
	return 0;
}

static inline uint8_t clip8(int32_t acc) {
	acc >>= PREC;
	return (uint8_t)(acc < 0 ? 0 : acc > 255 ? 255 : acc);
}

// hpass resamples rows rows of src (stride ss) into mid (stride ms) with the taps t.
static void hpass_scalar(uint8_t *mid, int ms, const uint8_t *src, int ss, int rows, int out, const taps *t) {
	for (int y = 0; y < rows; y++) {
		const uint8_t *row = src + (size_t)y * ss;
		uint8_t *dst = mid + (size_t)y * ms;
		for (int o = 0; o < out; o++) {
			const uint8_t *p = row + t->first[o];
			const int16_t *w = t->w + (size_t)o * t->n;
			int32_t acc = HALF;
			for (int k = 0; k < t->n; k++) {
				acc += (int32_t)p[k] * w[k];
			}
			dst[o] = clip8(acc);
		}
	}
}

// vpass resamples the columns of mid (stride ms) into dst (stride ds) with the taps t;
// width is the number of columns, rounded up to 8 by the SSE2 version.
static void vpass_scalar(uint8_t *dst, int ds, const uint8_t *mid, int ms, int width, int out, const taps *t) {
	for (int o = 0; o < out; o++) {
		const int16_t *w = t->w + (size_t)o * t->n;
		const uint8_t *base = mid + (size_t)t->first[o] * ms;
		uint8_t *row = dst + (size_t)o * ds;
		for (int x = 0; x < width; x++) {
			int32_t acc = HALF;
			for (int k = 0; k < t->n; k++) {
				acc += (int32_t)base[(size_t)k * ms + x] * w[k];
			}
			row[x] = clip8(acc);
		}
	}
}

#if CD_HAVE_SSE2
// hsum4 adds up the four lanes of each of m0..m3: lane i of the result is the sum of mi.
static inline __m128i hsum4(__m128i m0, __m128i m1, __m128i m2, __m128i m3) {
	__m128i t0 = _mm_add_epi32(_mm_unpacklo_epi32(m0, m1), _mm_unpackhi_epi32(m0, m1));
	__m128i t1 = _mm_add_epi32(_mm_unpacklo_epi32(m2, m3), _mm_unpackhi_epi32(m2, m3));
	return _mm_add_epi32(_mm_unpacklo_epi64(t0, t1), _mm_unpackhi_epi64(t0, t1));
}

// madd8 multiplies the 8 bytes at p by the 8 weights w and adds pairs: four int32 lanes.
static inline __m128i madd8(const uint8_t *p, __m128i w) {
	return _mm_madd_epi16(_mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)p), _mm_setzero_si128()), w);
}

// store4 rounds four fixed-point sums to bytes and stores them at dst.
static inline void store4(uint8_t *dst, __m128i sums) {
	__m128i v = _mm_srai_epi32(_mm_add_epi32(sums, _mm_set1_epi32(HALF)), PREC);
	v = _mm_packs_epi32(v, v);
	int32_t px4 = _mm_cvtsi128_si32(_mm_packus_epi16(v, v));
	memcpy(dst, &px4, 4);
}

// hpass_sse2 computes four outputs per step (the taps are padded to a multiple of four
// outputs, and mid rows have room for them), HCHUNK taps per madd. The common case of at most
// 8 taps does two rows per step with the weights in registers.
static void hpass_sse2(uint8_t *restrict mid, int ms, const uint8_t *restrict src, int ss, int rows, int out, const taps *t) {
	const int *restrict first = t->first;
	const int16_t *restrict wts = t->w;
	const int n = t->n;
	int y = 0;
	if (n == HCHUNK) {
		for (; y + 1 < rows; y += 2) {
			const uint8_t *r0 = src + (size_t)y * ss, *r1 = r0 + ss;
			uint8_t *d0 = mid + (size_t)y * ms, *d1 = d0 + ms;
			for (int o = 0; o < out; o += 4) {
				const __m128i w0 = _mm_loadu_si128((const __m128i *)(wts + (size_t)o * 8));
				const __m128i w1 = _mm_loadu_si128((const __m128i *)(wts + (size_t)o * 8 + 8));
				const __m128i w2 = _mm_loadu_si128((const __m128i *)(wts + (size_t)o * 8 + 16));
				const __m128i w3 = _mm_loadu_si128((const __m128i *)(wts + (size_t)o * 8 + 24));
				const int f0 = first[o], f1 = first[o + 1], f2 = first[o + 2], f3 = first[o + 3];
				store4(d0 + o, hsum4(madd8(r0 + f0, w0), madd8(r0 + f1, w1), madd8(r0 + f2, w2), madd8(r0 + f3, w3)));
				store4(d1 + o, hsum4(madd8(r1 + f0, w0), madd8(r1 + f1, w1), madd8(r1 + f2, w2), madd8(r1 + f3, w3)));
			}
		}
	}
	for (; y < rows; y++) {
		const uint8_t *row = src + (size_t)y * ss;
		uint8_t *dst = mid + (size_t)y * ms;
		for (int o = 0; o < out; o += 4) {
			__m128i m[4];
			for (int j = 0; j < 4; j++) {
				const uint8_t *p = row + first[o + j];
				const int16_t *w = wts + (size_t)(o + j) * n;
				__m128i acc = madd8(p, _mm_loadu_si128((const __m128i *)w));
				for (int k = HCHUNK; k < n; k += HCHUNK) {
					acc = _mm_add_epi32(acc, madd8(p + k, _mm_loadu_si128((const __m128i *)(w + k))));
				}
				m[j] = acc;
			}
			store4(dst + o, hsum4(m[0], m[1], m[2], m[3]));
		}
	}
}

// vpass_sse2 computes 16 columns per step, two rows per madd; widths are rounded up to 16,
// so mid and dst rows must have that many bytes.
static void vpass_sse2(uint8_t *restrict dst, int ds, const uint8_t *restrict mid, int ms, int width, int out, const taps *t) {
	const __m128i zero = _mm_setzero_si128();
	const __m128i half = _mm_set1_epi32(HALF);
	const int n = t->n;
	for (int o = 0; o < out; o++) {
		const int16_t *w = t->w + (size_t)o * n;
		const uint8_t *base = mid + (size_t)t->first[o] * ms;
		uint8_t *row = dst + (size_t)o * ds;
		for (int x = 0; x < width; x += 16) {
			__m128i a0 = half, a1 = half, a2 = half, a3 = half;
			for (int k = 0; k < n; k += 2) {
				__m128i r0 = _mm_loadu_si128((const __m128i *)(base + (size_t)k * ms + x));
				__m128i r1 = zero; // an odd last tap pairs with a zero row and weight
				int32_t w1 = 0;
				if (k + 1 < n) {
					r1 = _mm_loadu_si128((const __m128i *)(base + (size_t)(k + 1) * ms + x));
					w1 = (uint16_t)w[k + 1];
				}
				__m128i wp = _mm_set1_epi32((int32_t)((uint32_t)w1 << 16 | (uint16_t)w[k]));
				__m128i lo = _mm_unpacklo_epi8(r0, r1), hi = _mm_unpackhi_epi8(r0, r1); // r0,r1 byte pairs
				__m128i p0 = _mm_unpacklo_epi8(lo, zero), p1 = _mm_unpackhi_epi8(lo, zero);
				__m128i p2 = _mm_unpacklo_epi8(hi, zero), p3 = _mm_unpackhi_epi8(hi, zero);
				a0 = _mm_add_epi32(a0, _mm_madd_epi16(p0, wp));
				a1 = _mm_add_epi32(a1, _mm_madd_epi16(p1, wp));
				a2 = _mm_add_epi32(a2, _mm_madd_epi16(p2, wp));
				a3 = _mm_add_epi32(a3, _mm_madd_epi16(p3, wp));
			}
			__m128i v0 = _mm_packs_epi32(_mm_srai_epi32(a0, PREC), _mm_srai_epi32(a1, PREC));
			__m128i v1 = _mm_packs_epi32(_mm_srai_epi32(a2, PREC), _mm_srai_epi32(a3, PREC));
			_mm_storeu_si128((__m128i *)(row + x), _mm_packus_epi16(v0, v1));
		}
	}
}
#endif

static int round16(int v) { return (v + 15) / 16 * 16; }

// resize_plane resamples the sw×sh plane src (stride ss; valid extent ew×eh ≤ sw×sh) to dw×dh
// bytes in dst (stride ds ≥ round16(dw)). src must have HCHUNK readable bytes after its last row.
static int resize_plane(cd_decoder *d, int chroma, uint8_t *dst, int dw, int dh, int ds, const uint8_t *src, int ss, int sw, int sh, double ew, double eh) {
	// The horizontal pass pads taps with zero weights (they may read past the row, see
	// make_taps); the vertical pass uses exact windows.
	taps *tx = &d->tx[chroma], *ty = &d->ty[chroma];
	if (make_taps(d, tx, sw, ew, dw, HCHUNK) != 0 || make_taps(d, ty, sh, eh, dh, 1) != 0) {
		return fail(d, CD_NOMEM, "out of memory for filter taps");
	}
	int ms = round16(dw) + SLACK;
	if (grow((void **)&d->mid, &d->mid_cap, (size_t)ms * sh + SLACK) != 0) {
		return fail(d, CD_NOMEM, "out of memory for the resampler");
	}
#if CD_HAVE_SSE2
	if (!d->scalar) {
		hpass_sse2(d->mid, ms, src, ss, sh, dw, tx);
		vpass_sse2(dst, ds, d->mid, ms, round16(dw), dh, ty);
		return CD_OK;
	}
#endif
	hpass_scalar(d->mid, ms, src, ss, sh, dw, tx);
	vpass_scalar(dst, ds, d->mid, ms, dw, dh, ty);
	return CD_OK;
}

int cd_decode_resized(cd_decoder *d, const unsigned char *jpeg, unsigned long len, int sw, int sh, int size, unsigned char *dst) {
	int w, h, subsamp, cs;
	if (have_tj(d) != CD_OK) {
		return CD_NOMEM;
	}
	if (tjDecompressHeader3(d->tj, jpeg, len, &w, &h, &subsamp, &cs) != 0) {
		return tj_fail(d);
	}
	if (cs != TJCS_YCbCr && cs != TJCS_GRAY) {
		return fail(d, CD_ERROR, "colour space cannot be decoded to YCbCr planes");
	}
	if (subsamp < 0 || subsamp >= TJ_NUMSAMP) {
		return fail(d, CD_ERROR, "unknown chroma subsampling");
	}
	if (sw <= 0 || sh <= 0 || sw > w || sh > h || size <= 0) {
		return fail(d, CD_ERROR, "scaled size out of range");
	}
	int ncomp = subsamp == TJSAMP_GRAY ? 1 : 3;
	// Decoded planes, back to back, with SLACK bytes after the last for the SSE2 loads.
	int pw[3] = {0}, ph[3] = {0};
	size_t off[3] = {0}, total = 0;
	for (int c = 0; c < ncomp; c++) {
		pw[c] = tjPlaneWidth(c, sw, subsamp);
		ph[c] = tjPlaneHeight(c, sh, subsamp);
		if (pw[c] <= 0 || ph[c] <= 0) {
			return fail(d, CD_ERROR, "no plane size for the scaled image");
		}
		off[c] = total;
		total += (size_t)pw[c] * ph[c];
	}
	if (grow((void **)&d->planes, &d->planes_cap, total + SLACK) != 0) {
		return fail(d, CD_NOMEM, "out of memory for the decoded planes");
	}
	unsigned char *planes[3] = {d->planes + off[0], ncomp > 1 ? d->planes + off[1] : NULL, ncomp > 1 ? d->planes + off[2] : NULL};
	if (tjDecompressToYUVPlanes(d->tj, jpeg, len, planes, sw, pw, sh, 0) != 0) {
		return tj_fail(d);
	}
	// Resized planes: every component at the full output size, rows padded for the SSE2
	// stores. Chroma is resampled straight from its subsampled plane to size×size, so the
	// output keeps all the colour detail the photo has (as decoding to RGB and resizing does),
	// and libjpeg-turbo converts 4:4:4 (or grayscale) planes to RGB.
	int os = round16(size);
	size_t plane = (size_t)os * size;
	if (grow((void **)&d->small, &d->small_cap, ncomp * plane + SLACK) != 0) {
		return fail(d, CD_NOMEM, "out of memory for the resized planes");
	}
	int rc = resize_plane(d, 0, d->small, size, size, os, planes[0], pw[0], sw, sh, sw, sh);
	if (rc != CD_OK) {
		return rc;
	}
	if (ncomp > 1) {
		// Chroma sample j covers luma pixels [j*hs, (j+1)*hs) (JFIF's centred siting), so the
		// image spans sw/hs chroma samples; the last, partial one is in the plane.
		int hs = tjMCUWidth[subsamp] / 8, vs = tjMCUHeight[subsamp] / 8;
		int csw = (sw + hs - 1) / hs, csh = (sh + vs - 1) / vs;
		for (int c = 1; c < 3 && rc == CD_OK; c++) {
			rc = resize_plane(d, 1, d->small + c * plane, size, size, os, planes[c], pw[c], csw, csh, (double)sw / hs, (double)sh / vs);
		}
		if (rc != CD_OK) {
			return rc;
		}
	}
	const unsigned char *small[3] = {d->small, ncomp > 1 ? d->small + plane : NULL, ncomp > 1 ? d->small + 2 * plane : NULL};
	int strides[3] = {os, os, os};
	if (tjDecodeYUVPlanes(d->tj, small, strides, ncomp > 1 ? TJSAMP_444 : TJSAMP_GRAY, dst, size, size * 3, size, TJPF_RGB, 0) != 0) {
		return tj_fail(d);
	}
	return CD_OK;
}
