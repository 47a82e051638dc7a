package ingress

import (
	"crypto/tls"
	"net"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// A WebSocket upgrade passes through the proxy, over HTTP and HTTPS, and
// frames are echoed both ways.
func TestWebSocket(t *testing.T) {
	h := startProxy(t, Config{})
	// The backend greets with the Host it saw, then echoes messages.
	backend := httptest.NewServer(websocket.Server{Handler: func(ws *websocket.Conn) {
		msg := ws.Request().Host
		for websocket.Message.Send(ws, msg) == nil && websocket.Message.Receive(ws, &msg) == nil {
		}
	}})
	defer backend.Close()
	cert := newCert(t, "a.test")
	feedAll(h.p, newClass(ourClass, DefaultController, false), newService("ws"), newSlice("ws-1", "ws", backend.Listener.Addr().String()),
		tlsSecret("a-tls", "1", cert),
		newIngress("i", 1, tlsFor("a-tls", "a.test"), hostRule("a.test", pathTo(prefix, "/ws", "ws", 80))))

	for _, tc := range []struct {
		name, url string
		dial      func() (net.Conn, error)
	}{
		{"ws", "ws://a.test/ws/echo", func() (net.Conn, error) { return net.Dial("tcp", h.httpAddr) }},
		{"wss", "wss://a.test/ws/echo", func() (net.Conn, error) {
			return tls.Dial("tcp", h.httpsAddr, &tls.Config{ServerName: "a.test", RootCAs: pool(cert), NextProtos: []string{"http/1.1"}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, err := tc.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
			cfg, err := websocket.NewConfig(tc.url, "http://a.test/")
			if err != nil {
				t.Fatal(err)
			}
			ws, err := websocket.NewClient(cfg, conn)
			if err != nil {
				t.Fatalf("handshake through the proxy: %v", err)
			}
			var greeting string
			if err := websocket.Message.Receive(ws, &greeting); err != nil || greeting != "a.test" {
				t.Errorf("backend saw Host %q (%v)", greeting, err)
			}
			for _, msg := range []string{"hello", "world", string(make([]byte, 100_000))} {
				if err := websocket.Message.Send(ws, msg); err != nil {
					t.Fatal(err)
				}
				var got string
				if err := websocket.Message.Receive(ws, &got); err != nil {
					t.Fatal(err)
				}
				if got != msg {
					t.Errorf("echo: got %d bytes, want %d", len(got), len(msg))
				}
			}
		})
	}

	t.Run("closed at shutdown", func(t *testing.T) {
		conn, err := net.Dial("tcp", h.httpAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck
		cfg, _ := websocket.NewConfig("ws://a.test/ws", "http://a.test/")
		ws, err := websocket.NewClient(cfg, conn)
		if err != nil {
			t.Fatal(err)
		}
		var greeting string
		if err := websocket.Message.Receive(ws, &greeting); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := h.stop(); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if err := websocket.Message.Receive(ws, &greeting); err == nil {
			t.Error("the upgraded connection survived the shutdown")
		}
		if d := time.Since(start); d > shutdownGrace {
			t.Errorf("shutdown took %v", d)
		}
	})
}
