import { exitCodeOf } from '../../src/isolation/exec';
import { formatTable, isolationProbes, observe, runProbes, type TenantEndpoints, type World } from '../../src/isolation/truth-table';

const tenant = (label: string, n: number, egress: 'none' | 'internet'): TenantEndpoints => ({
  label,
  namespace: `tenant-${label}`,
  egress,
  pod: { namespace: `tenant-${label}`, pod: `app-${label}`, container: 'app', ip: `10.244.0.${n}` },
  serviceIp: `10.96.1.${n}`,
  httpPort: 8080,
  udpPort: 8081,
});

const world = (others: TenantEndpoints[]): World => ({
  others,
  dns: { serviceIp: '10.96.0.10', name: 'kubernetes.default.svc.cluster.local' },
  kubeSystem: [{ label: 'kube-system/coredns', ip: '10.244.0.2', port: 8080 }],
  ingress: { namespace: 'ingress', pod: 'controller', container: 'app' },
  strangers: [{ namespace: 'other', pod: 'p', container: 'c' }],
  apiServer: [
    { label: 'API server Service', ip: '10.96.0.1', port: 443 },
    { label: 'API server endpoint', ip: '198.51.100.1', port: 6443 },
  ],
  outside: { ip: '203.0.113.2', httpPort: 8080, udpPort: 8081 },
});

describe('isolationProbes', () => {
  const a = tenant('A', 10, 'none');
  const b = tenant('B', 11, 'internet');
  const probes = isolationProbes(a, world([b]));
  const expect_ = (from: string, to: string, protocol: string) => probes.filter((p) => p.from === from && p.to === to && p.protocol === protocol).map((p) => p.expected);

  it('promises what the policies say, cell by cell', () => {
    expect(expect_('A pod', 'A pod', 'tcp')).toEqual(['allowed']);
    expect(expect_('A pod', 'A Service', 'http')).toEqual(['allowed']);
    expect(expect_('A pod', 'B pod', 'tcp')).toEqual(['denied']);
    expect(expect_('A pod', 'B Service', 'udp')).toEqual(['denied']);
    expect(expect_('B pod', 'A Service', 'tcp')).toEqual(['denied']);
    expect(expect_('A pod', 'kube-dns', 'dns')).toEqual(['allowed']);
    expect(expect_('A pod', 'kube-dns', 'tcp')).toEqual(['allowed']);
    expect(expect_('A pod', 'kube-system/coredns', 'tcp')).toEqual(['denied']);
    expect(expect_('ingress controller', 'A Service', 'http')).toEqual(['allowed']);
    expect(expect_('ingress controller', 'A pod', 'udp')).toEqual(['denied']);
    expect(expect_('other pod', 'A Service', 'tcp')).toEqual(['denied']);
    expect(expect_('A pod', 'API server Service', 'tcp')).toEqual(['denied']);
    expect(expect_('A pod', 'API server endpoint', 'tcp')).toEqual(['denied']);
    expect(expect_('A pod', 'outside host', 'tcp')).toEqual(['denied']);
  });

  it('lets an internet plan reach the outside host, and only that changes', () => {
    const internet = isolationProbes({ ...a, egress: 'internet' }, world([b]));
    const changed = internet.filter((p, i) => p.expected !== probes[i]!.expected);
    expect(changed.map((p) => [p.to, p.protocol, p.expected])).toEqual([
      ['outside host', 'tcp', 'allowed'],
      ['outside host', 'udp', 'allowed'],
    ]);
  });
});

describe('observe', () => {
  it.each([
    [{ exitCode: 0, stdout: 'OK tcp 10.0.0.1:80 2ms: connected\n', stderr: '' }, 'allowed'],
    [{ exitCode: 1, stdout: 'FAIL tcp 10.0.0.1:80 1s: dial tcp 10.0.0.1:80: i/o timeout\n', stderr: '' }, 'denied'],
    [{ exitCode: 1, stdout: 'FAIL tcp 10.0.0.1:80 1ms: dial tcp 10.0.0.1:80: connect: connection refused\n', stderr: '' }, 'reached'],
    [{ exitCode: 1, stdout: 'FAIL udp 10.0.0.1:81 1ms: read udp: connection refused\n', stderr: '' }, 'reached'],
    [{ exitCode: 2, stdout: '', stderr: 'usage' }, 'error'],
    [{ stdout: '', stderr: '', error: 'exec refused: HTTP 403' }, 'error'],
  ])('%j is %s', (result, observed) => {
    expect(observe(result).observed).toBe(observed);
  });

  it('reads the exit code from the final exec status', () => {
    expect(exitCodeOf({ status: 'Success' })).toBe(0);
    expect(exitCodeOf({ status: 'Failure', reason: 'NonZeroExitCode', details: { causes: [{ reason: 'ExitCode', message: '1' }] } })).toBe(1);
    expect(exitCodeOf({ status: 'Failure', message: 'container not found' })).toBeUndefined();
  });
});

describe('runProbes', () => {
  it('runs each probe once with the timeout, at most `concurrency` at a time, and flags every mismatch', async () => {
    const a = tenant('A', 10, 'none');
    const probes = isolationProbes(a, world([tenant('B', 11, 'none')]));
    let inFlight = 0;
    let peak = 0;
    const commands: string[][] = [];
    const cells = await runProbes(
      async (_where, command) => {
        commands.push(command);
        inFlight++;
        peak = Math.max(peak, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        // Everything answers: every "denied" cell is a mismatch.
        return { exitCode: 0, stdout: 'OK', stderr: '' };
      },
      probes,
      { command: ['/tenant-app', 'probe'], timeoutMs: 1000, concurrency: 3 },
    );
    expect(commands).toHaveLength(probes.length);
    expect(peak).toBe(3);
    expect(commands[0]).toEqual(['/tenant-app', 'probe', 'tcp', '10.244.0.10:8080', '--timeout', '1000ms']);
    expect(cells.filter((c) => !c.ok).map((c) => c.expected)).toEqual(probes.filter((p) => p.expected === 'denied').map(() => 'denied'));
    const table = formatTable(cells);
    expect(table).toMatch(/^FROM +TO +PROTO +TARGET +EXPECTED +OBSERVED/);
    expect(table).toContain(`${probes.filter((p) => p.expected === 'allowed').length}/${probes.length} cells as expected`);
    expect(table).toMatch(/MISMATCH A pod -> B pod tcp 10.244.0.11:8080: expected denied, observed allowed/);
  });
});
