// deploy/kubernetes, checked offline: every object against the Kubernetes API schema of its kind
// (kubernetes-models), and the wiring between the Deployment, its Service, PDB, HPA, ConfigMap and Secret.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { loadConfig } from '../src/config.js';
import { dockerfileUser, parseYaml, REPO, SETTING_NAMES, type Yaml } from './helpers/deploy.js';

// The kinds deploy/kubernetes may hold, each with its model (schema) from kubernetes-models.
const MODELS: Record<string, new (data: Yaml) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

const K8S_DIR = 'deploy/kubernetes';
const k8sFiles = readdirSync(join(REPO, K8S_DIR)).filter((name) => name.endsWith('.yaml') && name !== 'kustomization.yaml');
const k8sObjects = k8sFiles.flatMap((file) => parseYaml(`${K8S_DIR}/${file}`).map((object) => ({ file, object })));

function only(kind: string): Yaml {
  const found = k8sObjects.filter(({ object }) => object?.kind === kind);
  assert.equal(found.length, 1, `exactly one ${kind} in ${K8S_DIR}`);
  return found[0]?.object;
}

const deployment = only('Deployment');
const podSpec = deployment.spec.template.spec;
const podLabels: Record<string, string> = deployment.spec.template.metadata.labels;
const container = podSpec.containers.find((c: Yaml) => c.name === 'gatehouse');
const configMap = only('ConfigMap');
const secret = only('Secret');

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.keys(selector).length > 0 && Object.entries(selector).every(([key, value]) => labels[key] === value);
}

function probePort(probe: Yaml): number | undefined {
  const port = probe.httpGet.port;
  return typeof port === 'number' ? port : container.ports.find((p: Yaml) => p.name === port)?.containerPort;
}

describe('Kubernetes manifests', () => {
  test('every object is valid against the Kubernetes API schema of its kind', () => {
    assert.ok(k8sObjects.length >= 7, 'the manifests hold the expected objects');
    for (const { file, object } of k8sObjects) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      assert.ok(Model, `${file}: no schema here for ${object.apiVersion} ${object.kind}`);
      assert.doesNotThrow(() => new Model(object).validate(), `${file}: ${object.kind} ${object.metadata?.name}`);
    }
  });

  test('the schema check rejects a malformed Deployment (so that the check above means something)', () => {
    const broken = structuredClone(deployment);
    broken.spec.replicas = 'three';
    delete broken.spec.selector;
    assert.throws(() => new Deployment(broken).validate());
  });

  test('kustomization.yaml applies every manifest but the example Secret', () => {
    const [kustomization] = parseYaml(`${K8S_DIR}/kustomization.yaml`);
    const listed: string[] = kustomization.resources;
    for (const file of listed) assert.ok(existsSync(join(REPO, K8S_DIR, file)), `${file} exists`);
    assert.deepEqual([...listed].sort(), k8sFiles.filter((file) => file !== 'secret.example.yaml').sort());
    assert.ok(
      kustomization.images.some((image: Yaml) => image.name === container.image),
      'kustomize maps the container image to a registry',
    );
  });

  test('the Deployment runs 3 instances and rolls out without ever dropping below them', () => {
    assert.equal(deployment.spec.replicas, 3);
    assert.equal(deployment.spec.strategy.type, 'RollingUpdate');
    assert.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0);
    assert.ok(deployment.spec.strategy.rollingUpdate.maxSurge >= 1);
    assert.ok(selects(deployment.spec.selector.matchLabels, podLabels), 'the Deployment selects its own pods');
  });

  test('probes ask the container port: /healthz for startup and liveness, /readyz for readiness', () => {
    const served = container.ports.map((p: Yaml) => p.containerPort);
    assert.deepEqual(served, [Number(configMap.data.PORT ?? 8080)], 'the container port is the PORT gatehouse listens on');
    for (const [name, path] of [
      ['startupProbe', '/healthz'],
      ['livenessProbe', '/healthz'],
      ['readinessProbe', '/readyz'],
    ] as const) {
      assert.equal(container[name]?.httpGet?.path, path, name);
      assert.equal(probePort(container[name]), served[0], `${name} port`);
    }
    const startupSeconds = container.startupProbe.periodSeconds * container.startupProbe.failureThreshold;
    assert.ok(startupSeconds >= 60, 'migrations get at least a minute before liveness applies');
  });

  test('CPU and memory are requested and limited', () => {
    for (const kind of ['requests', 'limits']) {
      assert.ok(container.resources?.[kind]?.cpu, `${kind}.cpu`);
      assert.ok(container.resources?.[kind]?.memory, `${kind}.memory`);
    }
  });

  test('the pod runs as the image user, not root, without privilege escalation, on a read-only root', () => {
    assert.equal(podSpec.securityContext.runAsNonRoot, true);
    assert.equal(String(podSpec.securityContext.runAsUser), dockerfileUser().split(':')[0], 'the same uid as the image');
    assert.equal(container.securityContext.allowPrivilegeEscalation, false);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
    const tmp = container.volumeMounts.find((mount: Yaml) => mount.mountPath === '/tmp');
    assert.ok(
      podSpec.volumes.some((volume: Yaml) => volume.name === tmp?.name && volume.emptyDir),
      '/tmp (tsx compile cache) is writable',
    );
  });

  test('a stopping pod leaves the endpoints first, then drains within the grace period', () => {
    const sleep: string[] = container.lifecycle.preStop.exec.command;
    assert.equal(sleep[0], 'sleep');
    const sleepSeconds = Number(sleep[1]);
    assert.ok(sleepSeconds >= 5, 'long enough for endpoints to be removed everywhere');
    const drainSeconds = Number(configMap.data.GATEHOUSE_SHUTDOWN_TIMEOUT_SECONDS ?? loadConfig({}).shutdownTimeoutSeconds);
    assert.ok(
      podSpec.terminationGracePeriodSeconds > sleepSeconds + drainSeconds,
      `terminationGracePeriodSeconds ${podSpec.terminationGracePeriodSeconds} > preStop ${sleepSeconds} s + drain ${drainSeconds} s`,
    );
  });

  test('the Service, PodDisruptionBudget, HPA and topology spread all point at the Deployment', () => {
    const service = only('Service');
    assert.ok(selects(service.spec.selector, podLabels), 'the Service selects the pods');
    assert.ok(
      service.spec.ports.every((port: Yaml) =>
        container.ports.some((p: Yaml) => p.name === port.targetPort || p.containerPort === port.targetPort),
      ),
      'the Service targets the container port',
    );
    const pdb = only('PodDisruptionBudget');
    assert.ok(selects(pdb.spec.selector.matchLabels, podLabels), 'the PDB selects the pods');
    assert.ok(pdb.spec.maxUnavailable === 1 || pdb.spec.minAvailable >= 2, 'a drain takes at most one of three');
    for (const constraint of podSpec.topologySpreadConstraints) assert.ok(selects(constraint.labelSelector.matchLabels, podLabels));

    const hpa = only('HorizontalPodAutoscaler');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    assert.equal(hpa.spec.minReplicas, deployment.spec.replicas);
    assert.ok(hpa.spec.maxReplicas > hpa.spec.minReplicas);
    assert.deepEqual(
      hpa.spec.metrics.map((metric: Yaml) => [metric.type, metric.resource?.name]),
      [['Resource', 'cpu']],
    );
    for (const object of [service, pdb, hpa, configMap, secret]) assert.equal(object.metadata.namespace, deployment.metadata.namespace);
  });

  test('the environment comes from the ConfigMap and Secret, holds only gatehouse settings, and loads', () => {
    const refs = container.envFrom.map((source: Yaml) => source.configMapRef?.name ?? source.secretRef?.name);
    assert.deepEqual(refs, [configMap.metadata.name, secret.metadata.name]);
    const names = [...Object.keys(configMap.data), ...Object.keys(secret.stringData), ...(container.env ?? []).map((e: Yaml) => e.name)];
    assert.deepEqual(
      names.filter((name) => !SETTING_NAMES.has(name)),
      [],
      'names that gatehouse does not read',
    );
    assert.doesNotThrow(() => loadConfig({ ...configMap.data, ...secret.stringData }));
  });

  test('secrets are only in the Secret, and its example values are obvious placeholders', () => {
    for (const name of ['DATABASE_URL', 'DATABASE_REPLICA_URLS', 'AMQP_URL', 'GATEHOUSE_ADMIN_PASSWORD']) {
      assert.ok(name in secret.stringData, `${name} is in the Secret`);
      assert.ok(!(name in configMap.data), `${name} is not in the ConfigMap`);
    }
    for (const [name, value] of Object.entries(secret.stringData)) assert.match(String(value), /REPLACE_ME/, name);
    for (const [name, value] of Object.entries(configMap.data))
      assert.doesNotMatch(String(value), /:\/\/[^/@\s]+:[^/@\s]+@/, `${name} has no password`);
  });
});
