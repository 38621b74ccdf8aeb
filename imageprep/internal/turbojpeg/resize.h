// resize.h: a reusable JPEG decoder that decodes with libjpeg-turbo into Y/Cb/Cr planes at a
// reduced DCT scale, resizes the planes with an anti-aliased bilinear filter, and converts the
// result to packed RGB, all in one call (see resize.c).
#ifndef CATDOG_RESIZE_H
#define CATDOG_RESIZE_H

enum {
	CD_OK = 0,
	CD_WARNING = 1,  // libjpeg-turbo decoded past damage (a truncated file, corrupt data)
	CD_ERROR = -1,   // libjpeg-turbo failed, or the image cannot be decoded to planes
	CD_NOMEM = -2,   // out of memory
};

typedef struct cd_decoder cd_decoder;

// cd_new returns a decoder, or NULL when memory or a TurboJPEG handle cannot be had.
cd_decoder *cd_new(void);
void cd_free(cd_decoder *d);

// cd_set_scalar makes the decoder use the portable resampling loops instead of SSE2 (tests
// compare the two; they compute the same integers).
void cd_set_scalar(cd_decoder *d, int scalar);

// cd_message is the text of the last failure.
const char *cd_message(const cd_decoder *d);

// cd_header reads a JPEG's size, chroma subsampling (TJSAMP_*) and colour space (TJCS_*).
int cd_header(cd_decoder *d, const unsigned char *jpeg, unsigned long len, int *w, int *h, int *subsamp, int *cs);

// cd_decode_resized decodes jpeg at the DCT-scaled size sw×sh (one of libjpeg-turbo's M/8
// scales of the image), resizes it to size×size and writes size*size*3 RGB bytes to dst.
int cd_decode_resized(cd_decoder *d, const unsigned char *jpeg, unsigned long len, int sw, int sh, int size, unsigned char *dst);

#endif
