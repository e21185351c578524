package app

import (
	"net"
)

// advertiseAddr is the gRPC address other processes reach this one at:
// the listen address with its host replaced by --advertise-host, or, when
// the server listens on every interface, by this machine's first
// non-loopback address (an unspecified host is no address for anyone
// else).
// It is worked out once, when the server has bound its port (startServer).
func (a *App) advertiseAddr() string { return a.w.advertise }

// advertise replaces the host of the listen address addr by host, or by
// local() when host is empty and addr's host is unspecified.
func advertise(addr, host string, local func() string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	switch {
	case host != "":
		h = host
	case isUnspecified(h):
		h = local()
	}
	return net.JoinHostPort(h, port)
}

func isUnspecified(host string) bool {
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

// firstNonLoopback is the first up, non-loopback unicast IPv4 address of
// this machine (then IPv6), or 127.0.0.1 when it has none.
func firstNonLoopback() string {
	ifs, err := net.Interfaces()
	if err != nil {
		return "127.0.0.1"
	}
	var v6 string
	for _, in := range ifs {
		if in.Flags&net.FlagUp == 0 || in.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := in.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			ipn, ok := ad.(*net.IPNet)
			if !ok || !ipn.IP.IsGlobalUnicast() {
				continue
			}
			if ipn.IP.To4() != nil {
				return ipn.IP.String()
			}
			if v6 == "" {
				v6 = ipn.IP.String()
			}
		}
	}
	if v6 != "" {
		return v6
	}
	return "127.0.0.1"
}
