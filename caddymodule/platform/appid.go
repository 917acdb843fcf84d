package platform

import "fmt"

// CheckAppIDChars refuses an app id that is empty, longer than 64 bytes
// or has anything but ASCII letters, digits, "-" and "_": no platform's
// app id does, and a typo would otherwise fail every login later.
func CheckAppIDChars(title, id string) error {
	ok := id != "" && len(id) <= 64
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
	}
	if !ok {
		return fmt.Errorf("app_id %q is not a %s app id (letters and digits, at most 64)", id, title)
	}
	return nil
}

// CheckDigits refuses an app id that is not n to m decimal digits (QQ's
// and Alipay's app ids are numbers).
func CheckDigits(title, id string, n, m int) error {
	ok := len(id) >= n && len(id) <= m
	for i := 0; ok && i < len(id); i++ {
		ok = '0' <= id[i] && id[i] <= '9'
	}
	if !ok {
		if n == m {
			return fmt.Errorf("app_id %q is not a %s app id (%d digits)", id, title, n)
		}
		return fmt.Errorf("app_id %q is not a %s app id (%d to %d digits)", id, title, n, m)
	}
	return nil
}
