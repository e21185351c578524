package app

import (
	"net"
	"strings"
	"testing"
)

func TestAdvertise(t *testing.T) {
	local := func() string { return "10.0.0.7" }
	for _, tc := range []struct{ addr, host, want string }{
		{"127.0.0.1:7070", "", "127.0.0.1:7070"},
		{"10.1.2.3:7070", "", "10.1.2.3:7070"},
		{"0.0.0.0:7070", "", "10.0.0.7:7070"},
		{"[::]:7070", "", "10.0.0.7:7070"},
		{":7070", "", "10.0.0.7:7070"},
		{"0.0.0.0:7070", "node7.cluster", "node7.cluster:7070"},
		{"127.0.0.1:7070", "fd00::5", "[fd00::5]:7070"},
	} {
		if got := advertise(tc.addr, tc.host, local); got != tc.want {
			t.Errorf("advertise(%q, %q) = %q, want %q", tc.addr, tc.host, got, tc.want)
		}
	}
}

func TestFirstNonLoopbackIsAnAddress(t *testing.T) {
	ip := net.ParseIP(firstNonLoopback())
	if ip == nil || ip.IsUnspecified() {
		t.Fatalf("firstNonLoopback() = %q", firstNonLoopback())
	}
}

func TestAdvertiseHostValidation(t *testing.T) {
	base := func() Config {
		c := Config{Targets: []string{TargetRegistry}, DataDir: "/tmp/x", HTTPAddr: "127.0.0.1:0", Embedded: true}
		return c
	}
	for _, bad := range []string{"0.0.0.0", "::", "10.0.0.1:7070", "http://node7"} {
		c := base()
		c.AdvertiseHost = bad
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "advertise-host") {
			t.Errorf("advertise-host %q: got %v", bad, err)
		}
	}
}
