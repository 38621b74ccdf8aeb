package inference

import (
	_ "embed"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
)

// upload is one image read from a request.
type upload struct {
	filename string
	data     []byte
}

// readSingle reads the image of POST /predict: the "file" part of a multipart form, or the
// whole body when it is sent raw with an image Content-Type.
func (s *Service) readSingle(r *http.Request) (upload, error) {
	mt, _, err := mediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return upload{}, err
	}
	if mt == "multipart/form-data" {
		imgs, err := s.readMultipart(r, 1)
		if err != nil {
			return upload{}, err
		}
		if len(imgs) == 0 {
			return upload{}, apiError(http.StatusBadRequest, ReasonBadRequest, `no "file" part in the form`)
		}
		return imgs[0], nil
	}
	if err := checkImageType(mt); err != nil {
		return upload{}, err
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return upload{}, bodyError(err)
	}
	return upload{data: data}, nil
}

// readMultipart streams a multipart form and keeps the parts named "file" (or "files"), at
// most max of them; other parts are skipped. The body size is bounded by MaxBytesHandler.
func (s *Service) readMultipart(r *http.Request, max int) ([]upload, error) {
	mt, _, err := mediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	if mt != "multipart/form-data" {
		return nil, apiError(http.StatusUnsupportedMediaType, ReasonUnsupportedMediaType,
			"want multipart/form-data with one or more \"file\" parts, got %q", mt)
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, apiError(http.StatusBadRequest, ReasonBadRequest, "bad multipart form: %v", err)
	}
	var out []upload
	for parts := 0; ; parts++ {
		if parts >= max+16 {
			return nil, apiError(http.StatusBadRequest, ReasonBadRequest, "too many form parts")
		}
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, bodyError(err)
		}
		if name := p.FormName(); name != "file" && name != "files" {
			if _, err := io.Copy(io.Discard, p); err != nil {
				return nil, bodyError(err)
			}
			continue
		}
		if len(out) == max {
			return nil, apiError(http.StatusRequestEntityTooLarge, ReasonTooManyFiles, "more than %d files in one request", max)
		}
		if err := partType(p); err != nil {
			return nil, err
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, bodyError(err)
		}
		out = append(out, upload{filename: truncate(p.FileName(), 255), data: data})
	}
}

func partType(p *multipart.Part) error {
	ct := p.Header.Get("Content-Type")
	if ct == "" {
		return nil
	}
	mt, _, err := mediaType(ct)
	if err != nil {
		return err
	}
	return checkImageType(mt)
}

// mediaType parses a Content-Type header; an empty one is application/octet-stream.
func mediaType(ct string) (string, map[string]string, error) {
	if ct == "" {
		return "application/octet-stream", nil, nil
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", nil, apiError(http.StatusUnsupportedMediaType, ReasonUnsupportedMediaType, "bad Content-Type: %v", err)
	}
	return mt, params, nil
}

// checkImageType accepts the media types of images the service decodes (JPEG, PNG) and
// application/octet-stream, whose content is sniffed.
func checkImageType(mt string) error {
	switch mt {
	case "image/jpeg", "image/jpg", "image/pjpeg", "image/png", "application/octet-stream":
		return nil
	}
	return apiError(http.StatusUnsupportedMediaType, ReasonUnsupportedMediaType,
		"unsupported Content-Type %q: send image/jpeg or image/png, raw or as the \"file\" part of multipart/form-data", mt)
}

func bodyError(err error) error {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return err
	}
	return apiError(http.StatusBadRequest, ReasonBadRequest, "reading the request body: %v", err)
}
