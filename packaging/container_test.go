package packaging

import (
	"os"
	"strings"
	"testing"
)

// TestContainerFilesAgree: the Containerfile, the compose override and the
// Kubernetes patch name the same entrypoint, port, probe and user, and the
// override and the patch keep the service and container names of CHT's
// compose file and Helm chart, so that the swap replaces the reference
// instead of running beside it.
func TestContainerFilesAgree(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	files := map[string]struct {
		text string
		want []string
	}{
		"Containerfile": {read("Containerfile"), []string{
			"FROM scratch\n", `ENTRYPOINT ["/sentinel"]`, "SENTINEL_LISTEN=0.0.0.0:7988", "EXPOSE 7988",
			"USER 65532:65532", `CMD ["/sentinel", "healthcheck"]`,
			"org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.source",
		}},
		"compose.sentinel-go.yml": {read("compose.sentinel-go.yml"), []string{
			"services:\n  sentinel:\n", `entrypoint: ["/sentinel"]`, `test: ["CMD", "/sentinel", "healthcheck"]`,
		}},
		"kubernetes/cht-sentinel-patch.yaml": {read("kubernetes/cht-sentinel-patch.yaml"), []string{
			"- name: cht-sentinel\n", `command: ["/sentinel"]`, "containerPort: 7988", "path: /healthz, port: 7988",
			"path: /readyz, port: 7988", "runAsUser: 65532", "type: Recreate", "replicas: 1",
		}},
	}
	for name, f := range files {
		for _, w := range f.want {
			if !strings.Contains(f.text, w) {
				t.Errorf("%s does not say %q", name, w)
			}
		}
	}
	// No ENV in the image or the override may set what CHT's deployment
	// gives: its values must win as they do for cht-sentinel.
	for _, cht := range []string{"COUCH_URL", "API_HOST", "API_PORT", "LOG_LEVEL"} {
		for _, name := range []string{"Containerfile", "compose.sentinel-go.yml"} {
			for _, line := range strings.Split(files[name].text, "\n") {
				if l := strings.TrimSpace(line); !strings.HasPrefix(l, "#") && strings.Contains(l, cht+"=") {
					t.Errorf("%s sets %s: %q", name, cht, l)
				}
			}
		}
	}
}
