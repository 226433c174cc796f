package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
)

// Content types sent with each format.
const (
	jsonContentType = "application/json"
	formContentType = "application/x-www-form-urlencoded"
)

// ContentType is the Content-Type of a body in format f.
func ContentType(f Format) string {
	if f == Form {
		return formContentType
	}
	return jsonContentType
}

// FormatOf returns the format of a body stored with contentType.
func FormatOf(contentType string) (Format, error) {
	switch contentType { // as stored: no parsing on the way out
	case jsonContentType:
		return JSON, nil
	case formContentType:
		return Form, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", fmt.Errorf("formats: content type %q: %w", contentType, err)
	}
	switch mt {
	case jsonContentType:
		return JSON, nil
	case formContentType:
		return Form, nil
	}
	return "", fmt.Errorf("formats: content type %q is neither JSON nor form", contentType)
}

// FormFromJSON turns a JSON body that Encode wrote into the form body
// Encode writes of the same event, keys in the JSON's order: what a GET
// hook sends as its query, or a form hook whose templates needed the JSON.
func FormFromJSON(body []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out []byte
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("formats: form from JSON: body is not a JSON object")
	}
	if err := formObject(dec, &out, nil); err != nil {
		return nil, fmt.Errorf("formats: form from JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("formats: form from JSON: data after the object")
	}
	return out, nil
}

// formObject writes the members of an object whose '{' was read; path is
// its escaped key path (nil at the root).
func formObject(dec *json.Decoder, out *[]byte, path []byte) error {
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		if err := formValue(dec, out, memberPath(path, appendFormValue(nil, name))); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func memberPath(path, name []byte) []byte {
	if path == nil {
		return name
	}
	p := append(append([]byte(nil), path...), "%5B"...)
	p = append(p, name...)
	return append(p, "%5D"...)
}

func formValue(dec *json.Decoder, out *[]byte, path []byte) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return formObject(dec, out, path)
		}
		// An empty list is left out: a form cannot spell one.
		for i := 0; dec.More(); i++ {
			if err := formValue(dec, out, memberPath(path, strconv.AppendInt(nil, int64(i), 10))); err != nil {
				return err
			}
		}
		_, err := dec.Token() // ']'
		return err
	}
	b := *out
	if len(b) > 0 {
		b = append(b, '&')
	}
	b = append(b, path...)
	b = append(b, '=')
	switch v := tok.(type) {
	case string:
		b = appendFormValue(b, v)
	case json.Number:
		b = append(b, v...)
	case bool:
		if v {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	case nil:
	}
	*out = b
	return nil
}
