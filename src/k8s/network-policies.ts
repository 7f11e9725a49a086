import type { V1NetworkPolicy, V1NetworkPolicySpec } from '@kubernetes/client-node';
import { isDns1123Label } from '../naming';
import { tenantLabels } from './labels';

export const NETWORK_POLICY_NAMES = Object.freeze({
  defaultDenyAll: 'default-deny-all',
  allowSameNamespace: 'allow-same-namespace',
  allowDnsEgress: 'allow-dns-egress',
  allowFromIngressController: 'allow-from-ingress-controller',
  allowInternetEgress: 'allow-internet-egress',
} as const);

/** What a plan lets a tenant's pods reach outside the cluster besides DNS. */
export type Egress = 'none' | 'internet';

/**
 * Ranges an `internet` tenant never reaches: private (RFC 1918), carrier-grade NAT (RFC 6598),
 * link-local (169.254.0.0/16 holds the cloud metadata address), loopback and "this network".
 * The cluster's own pod, Service and node ranges come on top (see NetworkSettings).
 */
export const NON_INTERNET_CIDRS: readonly string[] = Object.freeze([
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
]);

/** The cluster's side of the policies: its ranges and who the ingress controller is. */
export interface NetworkSettings {
  /** Pod, Service and node ranges of the cluster (IPv4 CIDRs), never reachable as "internet". */
  clusterCidrs: readonly string[];
  /** Labels of the ingress controller's pods in the ingress namespace; `{}`: every pod there. */
  ingressPodSelector: Record<string, string>;
  /** The app's container port the ingress controller may reach. */
  appPort: number;
}

/** The tenant app's HTTP port (the tenant chart's `containerPort`). */
export const TENANT_APP_PORT = 8080;

export const DEFAULT_NETWORK_SETTINGS: NetworkSettings = Object.freeze({
  clusterCidrs: Object.freeze(['10.96.0.0/12', '10.244.0.0/16']),
  ingressPodSelector: Object.freeze({ 'app.kubernetes.io/name': 'ingress-nginx' }),
  appPort: TENANT_APP_PORT,
});

const IPV4_CIDR = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(3[0-2]|[12]?\d)$/;

export function isIpv4Cidr(value: string): boolean {
  return IPV4_CIDR.test(value);
}

/** The IPv4 ranges an `internet` tenant may not reach, deduplicated and sorted. */
export function deniedEgressCidrs(clusterCidrs: readonly string[]): string[] {
  for (const cidr of clusterCidrs) {
    if (!isIpv4Cidr(cidr)) throw new Error(`Invalid cluster range ${JSON.stringify(cidr.slice(0, 60))}: it must be an IPv4 CIDR such as 10.96.0.0/12.`);
  }
  return [...new Set([...NON_INTERNET_CIDRS, ...clusterCidrs])].sort();
}

// Set by Kubernetes itself on every namespace (since 1.21) and not editable by tenants, so it is
// safe to select on, unlike labels a namespace owner could add to impersonate kube-system.
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function checkNamespaceName(what: string, value: string): void {
  if (!isDns1123Label(value)) {
    throw new Error(
      `Invalid ${what} ${JSON.stringify(value.slice(0, 80))}: it must be a namespace name ` +
        '(a DNS-1123 label of at most 63 lowercase letters, digits and "-").',
    );
  }
}

// `_from` (like LimitRangeItem's `_default`) is the client library's name for the JSON field
// "from", a reserved word in its generated models; the library's ObjectSerializer, which
// KubernetesObjectApi runs on every request body, writes it out as "from". Sending these objects
// with plain JSON.stringify would lose the field.

/**
 * The tenant's network isolation: deny everything, then allow traffic inside the namespace,
 * DNS lookups to kube-dns, inbound traffic from the ingress controller's pods to the app's port,
 * and, when the plan says `internet`, outbound traffic to addresses outside the cluster's and the
 * private ranges. Policies are additive, so each allow rule is its own object with a name that
 * says what it is for.
 */
export function buildNetworkPolicies(input: {
  namespace: string;
  tenantId: string;
  plan: string;
  ingressNamespace: string;
  egress?: Egress;
  network?: NetworkSettings;
}): V1NetworkPolicy[] {
  checkNamespaceName('namespace', input.namespace);
  checkNamespaceName('ingress controller namespace', input.ingressNamespace);
  const labels = tenantLabels(input.tenantId, input.plan);
  const network = input.network ?? DEFAULT_NETWORK_SETTINGS;
  const denied = deniedEgressCidrs(network.clusterCidrs);

  const policy = (name: string, spec: V1NetworkPolicySpec): V1NetworkPolicy => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: input.namespace, labels: { ...labels } },
    spec,
  });

  return [
    policy(NETWORK_POLICY_NAMES.defaultDenyAll, {
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    }),
    policy(NETWORK_POLICY_NAMES.allowSameNamespace, {
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ _from: [{ podSelector: {} }] }],
      egress: [{ to: [{ podSelector: {} }] }],
    }),
    policy(NETWORK_POLICY_NAMES.allowDnsEgress, {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          // One peer with both selectors means "kube-dns pods in kube-system" (AND), not either.
          to: [
            {
              namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          // TCP as well as UDP: large responses (and DNSSEC) fall back to TCP.
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    }),
    policy(NETWORK_POLICY_NAMES.allowFromIngressController, {
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [
        {
          // Both selectors in one peer: the controller's pods in its namespace, not every pod there.
          _from: [
            {
              namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: input.ingressNamespace } },
              podSelector: { matchLabels: { ...network.ingressPodSelector } },
            },
          ],
          ports: [{ protocol: 'TCP', port: network.appPort }],
        },
      ],
    }),
    // Present on every tenant, so a plan change is one apply of the same object: on a plan
    // without internet egress it selects the pods and allows nothing.
    policy(NETWORK_POLICY_NAMES.allowInternetEgress, {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: input.egress === 'internet' ? [{ to: [{ ipBlock: { cidr: '0.0.0.0/0', except: denied } }] }] : [],
    }),
  ];
}
