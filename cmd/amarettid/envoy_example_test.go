package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
)

// loadEnvoyExample reads examples/proxies/envoy.yaml as Envoy does: YAML
// into the v3 Bootstrap message, unknown fields and typed_config types
// refused, then Envoy's own field validation (protoc-gen-validate rules).
func loadEnvoyExample(t *testing.T) *bootstrapv3.Bootstrap {
	t.Helper()
	raw, err := os.ReadFile("../../examples/proxies/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(js, &b); err != nil {
		t.Fatalf("envoy.yaml is not an Envoy v3 bootstrap: %v", err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("envoy.yaml fails Envoy's validation: %v", err)
	}
	return &b
}

// TestEnvoyExample: the example Envoy configuration loads under Envoy's
// schema and says what the README promises: ext_authz over gRPC (API V3)
// before the router, failing closed (failure_mode_allow false, 503 on
// error), no request body, a timeout well above amarettid's p99, pointed at
// an HTTP/2 cluster on amarettid's --grpc-listen address whose health check
// asks for the ext_authz service; method and path overrides removed toward
// the API.
func TestEnvoyExample(t *testing.T) {
	b := loadEnvoyExample(t)
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	listeners := b.GetStaticResources().GetListeners()
	if len(listeners) != 1 {
		t.Fatalf("%d listeners, want 1", len(listeners))
	}
	var hcm hcmv3.HttpConnectionManager
	if err := listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	filters := hcm.GetHttpFilters()
	if len(filters) != 2 {
		t.Fatalf("%d HTTP filters, want ext_authz and the router", len(filters))
	}
	var authz extauthzv3.ExtAuthz
	if err := filters[0].GetTypedConfig().UnmarshalTo(&authz); err != nil {
		t.Fatalf("the first HTTP filter is not ext_authz: %v", err)
	}
	if err := filters[1].GetTypedConfig().UnmarshalTo(&routerv3.Router{}); err != nil {
		t.Fatalf("the last HTTP filter is not the router: %v", err)
	}
	gs := authz.GetGrpcService()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"ext_authz over gRPC, not HTTP", gs != nil && authz.GetHttpService() == nil},
		{"transport_api_version V3", authz.GetTransportApiVersion() == corev3.ApiVersion_V3},
		{"failure_mode_allow false", !authz.GetFailureModeAllow()},
		{"status_on_error 503", authz.GetStatusOnError().GetCode() == typev3.StatusCode_ServiceUnavailable},
		{"no with_request_body", authz.GetWithRequestBody() == nil},
		{"timeout between 0.2 s and 1 s", gs.GetTimeout().AsDuration() >= 200*time.Millisecond && gs.GetTimeout().AsDuration() <= time.Second},
		{"paths not normalised before amarettid", hcm.GetNormalizePath() != nil && !hcm.GetNormalizePath().GetValue() && !hcm.GetMergeSlashes()},
		{"client X-Forwarded-For not believed", hcm.GetUseRemoteAddress().GetValue()},
		{"header names with underscores refused", hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction() == corev3.HttpProtocolOptions_REJECT_REQUEST},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Fatal("envoy.yaml does not say so")
			}
		})
	}

	t.Run("amarettid cluster", func(t *testing.T) {
		c := clusters[gs.GetEnvoyGrpc().GetClusterName()]
		if c == nil {
			t.Fatalf("no cluster %q", gs.GetEnvoyGrpc().GetClusterName())
		}
		sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
		if sa.GetAddress() != "127.0.0.1" || sa.GetPortValue() != 9191 {
			t.Errorf("amarettid at %s:%d, want the documented --grpc-listen 127.0.0.1:9191", sa.GetAddress(), sa.GetPortValue())
		}
		var po upstreamhttpv3.HttpProtocolOptions
		if err := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(&po); err != nil {
			t.Fatal(err)
		}
		if po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
			t.Error("the amarettid cluster does not speak HTTP/2 (gRPC)")
		}
		hc := c.GetHealthChecks()
		if len(hc) != 1 || hc[0].GetGrpcHealthCheck().GetServiceName() != authzService {
			t.Errorf("health check %v, want grpc.health.v1 for %s", hc, authzService)
		}
	})

	t.Run("overrides removed toward the API", func(t *testing.T) {
		vh := hcm.GetRouteConfig().GetVirtualHosts()[0]
		removed := strings.Join(vh.GetRequestHeadersToRemove(), " ")
		for _, h := range []string{"x-http-method-override", "x-http-method", "x-method-override", "x-original-url", "x-rewrite-url"} {
			if !strings.Contains(" "+removed+" ", " "+h+" ") {
				t.Errorf("%s reaches the API", h)
			}
		}
		if route := vh.GetRoutes()[0].GetRoute().GetCluster(); clusters[route] == nil || route == gs.GetEnvoyGrpc().GetClusterName() {
			t.Errorf("the API route goes to %q", route)
		}
	})
}
