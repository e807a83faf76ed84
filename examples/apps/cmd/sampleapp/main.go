// Command sampleapp runs the sample internal system on its own, behind a
// sekisho gateway:
//
//	go run ./examples/apps/cmd/sampleapp -listen 127.0.0.1:9001 \
//	    -title 財務会計 -audience zaimu \
//	    -jwks http://zaimu.gw.localhost:8080/.well-known/sekisho/jwks.json
package main

import (
	"context"
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/sekisho/sekisho/examples/apps/sampleapp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "address to listen on")
	title := flag.String("title", "財務会計システム", "page title")
	aud := flag.String("audience", "zaimu", "sekisho route name (assertion audience)")
	jwks := flag.String("jwks", "", "gateway JWKS URL")
	flag.Parse()
	app, err := sampleapp.New(context.Background(), sampleapp.Options{Title: *title, Audience: *aud, JWKSURL: *jwks})
	if err != nil {
		log.Fatal(err)
	}
	srv := &http.Server{Addr: *listen, Handler: app, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
