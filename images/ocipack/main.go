// Command ocipack writes a one-layer OCI image archive (an OCI image layout in a tar) from local
// files, for `ctr images import`: the local stack's images need no registry and no Docker.
//
//	ocipack -name localhost/tenant-provisioner/tenant-app:dev -o tenant-app.tar \
//	  -file bin/tenant-app=/tenant-app -entrypoint /tenant-app -cmd serve -user 65532:65532
//
// The archive is reproducible: the same files give the same digests (every time stamp is zero).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

var epoch = time.Unix(0, 0).UTC()

func main() {
	var files, entrypoint, cmd, env, ports listFlag
	name := flag.String("name", "", "image reference, e.g. localhost/tenant-provisioner/tenant-app:dev")
	out := flag.String("o", "", "archive to write")
	user := flag.String("user", "", "user the image runs as (uid:gid)")
	arch := flag.String("arch", "amd64", "image architecture")
	flag.Var(&files, "file", "SRC=DEST: put local file SRC at DEST in the image (executable); repeatable")
	flag.Var(&entrypoint, "entrypoint", "entrypoint argument; repeatable")
	flag.Var(&cmd, "cmd", "default command argument; repeatable")
	flag.Var(&env, "env", "KEY=VALUE; repeatable")
	flag.Var(&ports, "port", "exposed port, e.g. 8080/tcp; repeatable")
	flag.Parse()
	if *name == "" || *out == "" || len(files) == 0 || !strings.Contains(*name, ":") {
		fmt.Fprintln(os.Stderr, "usage: ocipack -name REPO:TAG -o ARCHIVE -file SRC=DEST [-file ...] [-entrypoint ARG ...] [-cmd ARG ...] [-user UID:GID] [-env K=V] [-port P/tcp]")
		os.Exit(2)
	}
	if err := pack(*name, *out, *user, *arch, files, entrypoint, cmd, env, ports); err != nil {
		fmt.Fprintf(os.Stderr, "ocipack: %v\n", err)
		os.Exit(1)
	}
}

func pack(name, out, user, arch string, files, entrypoint, cmd, env, ports []string) error {
	layer, diffID, err := buildLayer(files)
	if err != nil {
		return err
	}
	exposed := map[string]struct{}{}
	for _, p := range ports {
		exposed[p] = struct{}{}
	}
	if len(env) == 0 {
		env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	config := map[string]any{
		"architecture": arch,
		"os":           "linux",
		"created":      epoch.Format(time.RFC3339),
		"config": map[string]any{
			"User": user, "Entrypoint": entrypoint, "Cmd": cmd, "Env": env, "ExposedPorts": exposed,
			"WorkingDir": "/",
		},
		"rootfs":  map[string]any{"type": "layers", "diff_ids": []string{diffID}},
		"history": []map[string]any{{"created": epoch.Format(time.RFC3339), "created_by": "ocipack"}},
	}
	configJSON, err := json.Marshal(config)
	if err != nil {
		return err
	}
	configDesc := describe("application/vnd.oci.image.config.v1+json", configJSON)
	layerDesc := describe("application/vnd.oci.image.layer.v1.tar+gzip", layer)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	})
	if err != nil {
		return err
	}
	manifestDesc := describe("application/vnd.oci.image.manifest.v1+json", manifest)
	manifestDesc.Platform = &platform{Architecture: arch, OS: "linux"}
	manifestDesc.Annotations = map[string]string{
		"io.containerd.image.name":          name,
		"org.opencontainers.image.ref.name": name[strings.LastIndex(name, ":")+1:],
	}
	index, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manifestDesc},
	})
	if err != nil {
		return err
	}

	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	entries := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blobPath(configDesc), configJSON},
		{blobPath(layerDesc), layer},
		{blobPath(manifestDesc), manifest},
	}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
	}
	for _, e := range entries {
		if err := writeFile(tw, e.name, e.data, 0o644); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(out+".tmp", out)
}

func blobPath(d descriptor) string { return "blobs/sha256/" + strings.TrimPrefix(d.Digest, "sha256:") }

func describe(mediaType string, data []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: digest(data), Size: int64(len(data))}
}

func digest(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// buildLayer returns the gzipped layer and the digest of its uncompressed tar (the diff ID).
func buildLayer(files []string) ([]byte, string, error) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	dirs := map[string]bool{"tmp": true}
	type item struct{ src, dest string }
	var items []item
	for _, spec := range files {
		src, dest, ok := strings.Cut(spec, "=")
		if !ok || !strings.HasPrefix(dest, "/") {
			return nil, "", fmt.Errorf("-file %q: want SRC=/DEST", spec)
		}
		dest = strings.TrimPrefix(path.Clean(dest), "/")
		for d := path.Dir(dest); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
		items = append(items, item{src, dest})
	}
	sortedDirs := make([]string, 0, len(dirs))
	for d := range dirs {
		sortedDirs = append(sortedDirs, d)
	}
	sort.Strings(sortedDirs)
	for _, d := range sortedDirs {
		mode := int64(0o755)
		if d == "tmp" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: mode, ModTime: epoch}); err != nil {
			return nil, "", err
		}
	}
	for _, it := range items {
		data, err := os.ReadFile(it.src)
		if err != nil {
			return nil, "", err
		}
		if err := writeFile(tw, it.dest, data, 0o755); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	diffID := digest(raw.Bytes())
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	if err != nil {
		return nil, "", err
	}
	zw.ModTime = epoch
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), diffID, nil
}

func writeFile(tw *tar.Writer, name string, data []byte, mode int64) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data)), ModTime: epoch}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
