import type { V1LimitRange, V1ResourceQuota } from '@kubernetes/client-node';
import type { Plan } from '../plans';
import { tenantLabels } from './labels';

export const RESOURCE_QUOTA_NAME = 'tenant-quota';
export const LIMIT_RANGE_NAME = 'tenant-limits';

interface QuotaInput {
  namespace: string;
  tenantId: string;
  plan: Plan;
}

/** Caps what the whole tenant namespace may consume, sized by the plan. */
export function buildResourceQuota(input: QuotaInput): V1ResourceQuota {
  const { quota } = input.plan;
  return {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: {
      name: RESOURCE_QUOTA_NAME,
      namespace: input.namespace,
      labels: tenantLabels(input.tenantId, input.plan.id),
    },
    spec: {
      // Counts are strings because ResourceQuota.spec.hard holds quantities, and a quantity is a string.
      hard: {
        'requests.cpu': quota.requestsCpu,
        'requests.memory': quota.requestsMemory,
        'limits.cpu': quota.limitsCpu,
        'limits.memory': quota.limitsMemory,
        'requests.storage': quota.requestsStorage,
        persistentvolumeclaims: String(quota.persistentVolumeClaims),
        pods: String(quota.pods),
        services: String(quota.services),
        secrets: String(quota.secrets),
        configmaps: String(quota.configMaps),
      },
    },
  };
}

/**
 * Per-container defaults and ceilings. The defaults matter because once the quota limits cpu and
 * memory, the API server rejects any pod whose containers do not declare them; the LimitRange
 * fills them in instead.
 */
export function buildLimitRange(input: QuotaInput): V1LimitRange {
  const { limitRange } = input.plan;
  return {
    apiVersion: 'v1',
    kind: 'LimitRange',
    metadata: {
      name: LIMIT_RANGE_NAME,
      namespace: input.namespace,
      labels: tenantLabels(input.tenantId, input.plan.id),
    },
    spec: {
      limits: [
        {
          type: 'Container',
          // `_default` is the client library's name for the JSON field "default" (a reserved word);
          // its ObjectSerializer, used by KubernetesObjectApi, writes it out as "default".
          _default: { cpu: limitRange.defaultLimitCpu, memory: limitRange.defaultLimitMemory },
          defaultRequest: { cpu: limitRange.defaultRequestCpu, memory: limitRange.defaultRequestMemory },
          max: { cpu: limitRange.maxCpu, memory: limitRange.maxMemory },
        },
      ],
    },
  };
}
