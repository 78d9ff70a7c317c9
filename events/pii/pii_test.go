package pii

import (
	"errors"
	"strings"
	"testing"
)

func TestRealName(t *testing.T) {
	t.Parallel()
	f, err := NewFingerprinter([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewFingerprinter([]byte(strings.Repeat("x", 32)))
	fp1, m1, err := f.RealName("900101-1234567")
	if err != nil {
		t.Fatal(err)
	}
	fp2, _, _ := f.RealName("9001011234567")
	fp3, _, _ := other.RealName("9001011234567")
	if fp1 != fp2 || fp1 == fp3 || len(fp1) != 64 {
		t.Fatalf("fingerprints: same number must match under one key only: %s %s %s", fp1, fp2, fp3)
	}
	if m1 != "900101-1******" || strings.Contains(fp1+m1, "1234567") {
		t.Fatalf("mask %q leaks", m1)
	}
	if _, m, _ := f.RealName("123-45-67890"); m != "123-45-*****" {
		t.Fatalf("business mask %q", m)
	}
	for _, bad := range []string{"", "12345", "90010112345678", "90010a-1234567"} {
		if _, _, err := f.RealName(bad); !errors.Is(err, ErrRealNameFormat) || (bad != "" && strings.Contains(err.Error(), bad)) {
			t.Errorf("RealName(%q) = %v", bad, err)
		}
	}
}

func TestPhone(t *testing.T) {
	t.Parallel()
	f, _ := NewFingerprinter([]byte(strings.Repeat("k", 40)))
	fp, m, err := f.Phone("010-1234-5678")
	if err != nil || m != "*********5678" || len(fp) != 64 {
		t.Fatalf("Phone = %q %q %v", fp, m, err)
	}
	if rn, _, _ := f.RealName("0101234567"); rn == fp {
		t.Fatal("phone and real-name fingerprints share a domain")
	}
	for _, bad := range []string{"", "short", "has space in it", strings.Repeat("9", 65)} {
		if _, _, err := f.Phone(bad); !errors.Is(err, ErrPhoneFormat) {
			t.Errorf("Phone(%q) = %v", bad, err)
		}
	}
	if _, err := NewFingerprinter([]byte("short")); !errors.Is(err, ErrKeyTooShort) {
		t.Fatal("short key accepted")
	}
}
