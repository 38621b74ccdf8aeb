package imageprep_test

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/png"
	"strings"

	"github.com/catdog-mlops/catdog/imageprep"
)

func ExampleSpec_Preprocess() {
	var buf bytes.Buffer
	_ = png.Encode(&buf, image.NewGray(image.Rect(0, 0, 40, 30))) // a black 40x30 picture
	x, err := imageprep.DefaultSpec().Preprocess(&buf, imageprep.DefaultLimits())
	fmt.Println(len(x), err)   // 3 x 224 x 224 floats, CHW
	fmt.Printf("%.4f\n", x[0]) // (0 - 0.485) / 0.229

	_, err = imageprep.DefaultSpec().Preprocess(strings.NewReader(""), imageprep.DefaultLimits())
	var de *imageprep.DecodeError
	fmt.Println(errors.As(err, &de), de.Reason)
	// Output:
	// 150528 <nil>
	// -2.1179
	// true empty
}
