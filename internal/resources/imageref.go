package resources

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// The image reference grammar of github.com/distribution/reference, which is
// what containerd and the kubelet accept:
//
//	reference       := name [ ":" tag ] [ "@" digest ]
//	name            := [domain '/'] path-component ['/' path-component]*
//	domain          := host [':' port-number]
//	host            := domain-name | IPv4address | \[ IPv6address \]
//	path-component  := alpha-numeric [separator alpha-numeric]*
//	separator       := /[_.]|__|[-]+/
//	tag             := /[\w][\w.-]{0,127}/
//	digest          := algorithm ":" hex
const (
	refAlnum           = `[a-z0-9]+`
	refSeparator       = `(?:[._]|__|[-]+)`
	refPathComponent   = refAlnum + `(?:` + refSeparator + refAlnum + `)*`
	refDomainComponent = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	refDomainName      = refDomainComponent + `(?:\.` + refDomainComponent + `)*`
	refIPv6            = `\[(?:[a-fA-F0-9:]+)\]`
	refDomain          = `(?:` + refDomainName + `|` + refIPv6 + `)(?::[0-9]+)?`
	refName            = `(?:` + refDomain + `/)?` + refPathComponent + `(?:/` + refPathComponent + `)*`
	refTag             = `[\w][\w.-]{0,127}`
	refDigest          = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
)

var referenceRegexp = regexp.MustCompile(`^(` + refName + `)(?::(` + refTag + `))?(?:@(` + refDigest + `))?$`)

// nameTotalLengthMax is the longest repository name a registry accepts.
const nameTotalLengthMax = 255

// digestHexLen lists the digest algorithms registries implement.
var digestHexLen = map[string]int{"sha256": 64, "sha384": 96, "sha512": 128}

// imageRef is a parsed image reference.
type imageRef struct {
	Name   string // with the domain, when given
	Tag    string // "" when absent
	Digest string // "" when absent
}

var errReferenceFormat = errors.New("invalid reference format")

// parseImageRef parses s with distribution/reference's grammar.
func parseImageRef(s string) (imageRef, error) {
	m := referenceRegexp.FindStringSubmatch(s)
	if m == nil {
		if s != "" && referenceRegexp.MatchString(strings.ToLower(s)) {
			return imageRef{}, fmt.Errorf("%w: repository name must be lowercase", errReferenceFormat)
		}
		return imageRef{}, errReferenceFormat
	}
	ref := imageRef{Name: m[1], Tag: m[2], Digest: m[3]}
	if len(ref.Name) > nameTotalLengthMax {
		return imageRef{}, fmt.Errorf("%w: repository name must not be more than %d characters", errReferenceFormat, nameTotalLengthMax)
	}
	if ref.Digest != "" {
		alg, hex, _ := strings.Cut(ref.Digest, ":")
		n, ok := digestHexLen[alg]
		if !ok {
			return imageRef{}, fmt.Errorf("%w: unsupported digest algorithm %q", errReferenceFormat, alg)
		}
		if len(hex) != n {
			return imageRef{}, fmt.Errorf("%w: invalid checksum digest length", errReferenceFormat)
		}
	}
	return ref, nil
}

// defaultPullPolicyIsAlways reports whether an image gets imagePullPolicy
// Always: tag latest, or neither tag nor digest (which means latest).
func defaultPullPolicyIsAlways(image string) bool {
	ref, err := parseImageRef(image)
	if err != nil {
		// Validation rejects it; the choice does not matter.
		return false
	}
	return ref.Tag == "latest" || (ref.Tag == "" && ref.Digest == "")
}
