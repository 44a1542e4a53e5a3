package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// certFiles serves the certificate of -tls-cert and -tls-key, and loads them again when either file changes
// (a renewed certificate, e.g. from certbot), without a restart. A renewal that fails to load leaves the
// previous certificate in use.
type certFiles struct {
	certFile, keyFile string
	log               *zap.Logger

	mu                  sync.Mutex
	cert                *tls.Certificate
	certStamp, keyStamp fileStamp
}

type fileStamp struct {
	mod  time.Time
	size int64
}

func stamp(name string) (fileStamp, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{fi.ModTime(), fi.Size()}, nil
}

// loadCertFiles loads the pair once, so that a bad pair stops the node at start.
func loadCertFiles(certFile, keyFile string, log *zap.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certFiles) load() error {
	cs, err1 := stamp(c.certFile)
	ks, err2 := stamp(c.keyFile)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("tls: %w", firstErr(err1, err2))
	}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return fmt.Errorf("tls: certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	c.cert, c.certStamp, c.keyStamp = &cert, cs, ks
	return nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// getCertificate is tls.Config.GetCertificate: the loaded pair, reloaded first if the files have changed.
func (c *certFiles) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, err1 := stamp(c.certFile)
	ks, err2 := stamp(c.keyFile)
	if err1 == nil && err2 == nil && (cs != c.certStamp || ks != c.keyStamp) {
		if err := c.load(); err != nil {
			// Tried again when a file changes next, e.g. the key written after its certificate.
			c.certStamp, c.keyStamp = cs, ks
			c.log.Warn("tls: keeping the previous certificate", zap.Error(err))
		} else {
			c.log.Info("tls: certificate reloaded", zap.String("cert", c.certFile))
		}
	}
	return c.cert, nil
}

// tlsConfig is the HTTPS configuration: TLS 1.2 and later, with the reloading certificate.
func (c *certFiles) tlsConfig() *tls.Config {
	// HTTP/1.1 only: the WebSocket upgrade needs it, and the node serves few, small requests.
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.getCertificate, NextProtos: []string{"http/1.1"}}
}
