import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load, loadAll } from 'js-yaml';
import { parseDurationSeconds } from '../../src/config/duration.js';
import { buildConfig } from '../../src/config/environment.js';

/**
 * The example manifests (deploy/kubernetes) and container files, parsed as
 * YAML: the probes name the health routes that exist, the grace period
 * outlasts the shutdown sequence, and the key-rotation job runs a real command.
 */
const ROOT = join(import.meta.dirname, '..', '..');
const K8S = join(ROOT, 'deploy', 'kubernetes');

interface Probe {
  httpGet?: { path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  startupProbe?: Probe;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] }; sleep?: { seconds: number } } };
  resources?: { requests?: object; limits?: object };
  securityContext?: {
    readOnlyRootFilesystem?: boolean;
    allowPrivilegeEscalation?: boolean;
    capabilities?: { drop?: string[] };
  };
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
}
interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec: {
    template?: { spec: PodSpec };
    jobTemplate?: { spec: { template: { spec: PodSpec } } };
    schedule?: string;
    concurrencyPolicy?: string;
    selector?: Record<string, unknown>;
  };
}

function manifests(file: string): Manifest[] {
  return loadAll(readFileSync(join(K8S, file), 'utf8')) as Manifest[];
}
const one = (file: string, kind: string): Manifest => {
  const found = manifests(file).filter((manifest) => manifest.kind === kind);
  expect(found).toHaveLength(1);
  return found[0];
};

const config = one('configmap.yaml', 'ConfigMap');
const secret = one('secret.example.yaml', 'Secret');
const deployment = one('deployment.yaml', 'Deployment');
const pod = deployment.spec.template!.spec;
const [app] = pod.containers;
const cronJob = one('key-rotation-cronjob.yaml', 'CronJob');
const job = cronJob.spec.jobTemplate!.spec.template.spec;

const seconds = (value: string | undefined) => parseDurationSeconds(value ?? '0') ?? NaN;

describe('deploy/kubernetes', () => {
  it('probes liveness on /health/live and readiness on /health/ready', () => {
    expect(app.livenessProbe?.httpGet?.path).toBe('/health/live');
    expect(app.readinessProbe?.httpGet?.path).toBe('/health/ready');
    expect(app.startupProbe?.httpGet?.path).toBe('/health/live');
  });

  it('gives the shutdown sequence time: preStop, SHUTDOWN_DELAY and the drain fit the grace period', () => {
    const preStop = app.lifecycle?.preStop;
    const sleep = preStop?.sleep?.seconds ?? Number(preStop?.exec?.command.at(-1));
    expect(sleep).toBeGreaterThan(0);
    const delay = seconds(config.data?.SHUTDOWN_DELAY);
    const drain = seconds(config.data?.SHUTDOWN_DRAIN_TIMEOUT ?? '10');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(sleep + delay + drain);
  });

  it('runs read-only, as a non-root user, with limits, configured from the ConfigMap and Secret', () => {
    for (const spec of [pod, job]) {
      expect(spec.securityContext?.runAsNonRoot).toBe(true);
      const [container] = spec.containers;
      expect(container.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ['ALL'] },
      });
      expect(container.resources?.limits).toBeDefined();
      expect(container.envFrom).toEqual([
        { configMapRef: { name: config.metadata.name } },
        { secretRef: { name: secret.metadata.name } },
      ]);
    }
  });

  it('the example Secret holds placeholders for every secret production requires', () => {
    const values = secret.stringData ?? {};
    expect(Object.keys(values).sort()).toEqual(
      ['DATABASE_URL', 'JWT_REFRESH_SECRET', 'METRICS_TOKEN', 'SIGNING_KEYS_SECRET'].sort(),
    );
    for (const value of Object.values(values)) expect(value).toContain('REPLACE_ME');
  });

  it('rotates the signing key with the CLI the image ships, one run at a time', () => {
    const [rotate] = job.containers;
    expect(rotate.command).toEqual(['node', 'dist/src/cli/keys.js', 'rotate']);
    expect(rotate.image).toBe(app.image);
    // The script the build makes (npm test builds first), from the source that has the command.
    expect(existsSync(join(ROOT, rotate.command![1]))).toBe(true);
    expect(readFileSync(join(ROOT, 'src', 'cli', 'keys.ts'), 'utf8')).toContain("'rotate'");
    expect(cronJob.spec.concurrencyPolicy).toBe('Forbid');
    expect(cronJob.spec.schedule).toMatch(/^\S+ \S+ \S+ \S+ \S+$/);
  });

  it('the ConfigMap and the example Secret make a configuration production accepts', () => {
    const env = { ...config.data, ...secret.stringData };
    const built = buildConfig(env);
    expect(built.nodeEnv).toBe('production');
    expect(built.shutdown.delay + built.shutdown.drainTimeout).toBeLessThan(
      pod.terminationGracePeriodSeconds!,
    );
    expect(built.docsEnabled).toBe(false);
  });

  it('kustomization applies everything but the example Secret', () => {
    const kustomization = load(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
    };
    expect(kustomization.resources.sort()).toEqual(
      ['configmap.yaml', 'deployment.yaml', 'key-rotation-cronjob.yaml', 'service.yaml'].sort(),
    );
  });
});

describe('container files', () => {
  it('the image checks liveness, compose checks readiness', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/HEALTHCHECK[\s\S]*\/health\/live/);
    const compose = load(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { healthcheck?: { test: string[] }; environment?: object }>;
    };
    for (const name of ['app', 'api']) {
      expect(compose.services[name].healthcheck?.test.join(' ')).toContain('/health/ready');
      expect(compose.services[name].environment).toMatchObject({
        // Required: no default an operator could forget to replace.
        PUBLIC_URL: expect.stringMatching(/\$\{PUBLIC_URL:\?[^}]+\}+$/) as unknown,
      });
    }
  });

  it('nginx does not proxy /metrics', () => {
    const nginx = readFileSync(join(ROOT, 'deploy', 'nginx.conf'), 'utf8');
    expect(nginx).toMatch(/location \^~ \/metrics \{\s*return 404;\s*\}/);
  });
});
