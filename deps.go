package main
import (
 _ "github.com/jcmturner/gokrb5/v8/client"
 _ "github.com/prometheus/client_golang/prometheus"
 _ "gopkg.in/yaml.v3"
 _ "golang.org/x/crypto/cryptobyte"
)
func main(){}
