/*
 * Test double of the kubelet ECR credential provider that Bottlerocket ships at
 * /usr/libexec/kubernetes/kubelet/plugins/ecr-credential-provider, enforcing the exec-plugin protocol
 * as kubernetes/cloud-provider-aws implements it:
 *   - cmd/ecr-credential-provider/plugin.go (runPlugin/decodeRequest): read ALL of stdin; refuse a
 *     group version other than credentialprovider.kubelet.k8s.io/v1 and a kind other than
 *     CredentialProviderRequest; exit 1 on error (main.go: klog.Errorf, os.Exit(1)).
 *   - cmd/ecr-credential-provider/main.go (GetCredentials/parseRepoURL): the image's host must match
 *     ^(\d{12})\.dkr\.ecr(-fips)?\.<region>\.amazonaws\.com(\.cn)?$ ("... is not a valid ECR
 *     repository URL"); the response is a v1 CredentialProviderResponse with cacheKeyType
 *     "Registry" and auth keyed by that registry host: {"username": "AWS", "password": <token>}.
 * Static C because the Bottlerocket host has no interpreter to run a script double with.
 * The token is read from /etc/coldstart-test/ecr-token inside the host model (a test fixture).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char input[65536];

/* The value of a top-level "key":"value" string member (the v1 request has only string members). */
static int member(const char *key, char *out, size_t cap) {
    char pattern[128];
    snprintf(pattern, sizeof pattern, "\"%s\"", key);
    const char *p = strstr(input, pattern);
    if (!p) return 0;
    p += strlen(pattern);
    while (isspace((unsigned char)*p)) p++;
    if (*p++ != ':') return 0;
    while (isspace((unsigned char)*p)) p++;
    if (*p++ != '"') return 0;
    size_t n = 0;
    while (*p && *p != '"' && n + 1 < cap) { if (*p == '\\') return 0; out[n++] = *p++; }
    if (*p != '"') return 0;
    out[n] = 0;
    return 1;
}

static int ecr_host(const char *host) {
    int digits = 0;
    while (isdigit((unsigned char)host[digits])) digits++;
    if (digits != 12) return 0;
    const char *rest = host + 12;
    if (strncmp(rest, ".dkr.ecr.", 9) == 0) rest += 9;
    else if (strncmp(rest, ".dkr.ecr-fips.", 14) == 0) rest += 14;
    else return 0;
    const char *dot = strchr(rest, '.');
    if (!dot || dot == rest) return 0;
    return strcmp(dot, ".amazonaws.com") == 0 || strcmp(dot, ".amazonaws.com.cn") == 0;
}

int main(void) {
    size_t n = fread(input, 1, sizeof input - 1, stdin);
    input[n] = 0;
    char api[128], kind[128], image[1024], host[512], token[4096];
    if (!member("apiVersion", api, sizeof api) || strcmp(api, "credentialprovider.kubelet.k8s.io/v1") != 0) {
        fprintf(stderr, "Error running credential provider plugin: group version %s is not supported\n", api);
        return 1;
    }
    if (!member("kind", kind, sizeof kind) || strcmp(kind, "CredentialProviderRequest") != 0) {
        fprintf(stderr, "Error running credential provider plugin: kind was \"%s\", expected CredentialProviderRequest\n", kind);
        return 1;
    }
    if (!member("image", image, sizeof image) || !image[0]) {
        fprintf(stderr, "Error running credential provider plugin: image in plugin request was empty\n");
        return 1;
    }
    const char *start = strstr(image, "://") ? strstr(image, "://") + 3 : image;
    size_t len = strcspn(start, "/:@");
    if (len >= sizeof host) return 1;
    memcpy(host, start, len);
    host[len] = 0;
    if (!ecr_host(host)) {
        fprintf(stderr, "Error running credential provider plugin: %s is not a valid ECR repository URL\n", host);
        return 1;
    }
    FILE *f = fopen("/etc/coldstart-test/ecr-token", "r");
    if (!f || !fgets(token, sizeof token, f)) {
        fprintf(stderr, "Error running credential provider plugin: NoCredentialProviders: no valid providers in chain\n");
        return 1;
    }
    token[strcspn(token, "\n")] = 0;
    printf("{\"kind\":\"CredentialProviderResponse\",\"apiVersion\":\"credentialprovider.kubelet.k8s.io/v1\","
           "\"cacheKeyType\":\"Registry\",\"cacheDuration\":\"6h0m0s\",\"auth\":{\"%s\":{\"username\":\"AWS\",\"password\":\"%s\"}}}\n",
           host, token);
    return 0;
}
