import { describe, expect, it } from 'vitest';
import { BuildMetrics, startDurationLabel } from '../../src/metrics/build-metrics.js';

describe('BuildMetrics', () => {
  it('renders Quay\'s metric names and labels, and ours', async () => {
    const m = new BuildMetrics();
    m.recordFallback('ec2-main');
    m.recordAck('k8s-main', 42);
    m.recordQueueDuration(true, 3);
    m.recordQueueDuration(false, 4);
    m.recordBuildDuration('k8s-main', 'complete', 300);
    m.recordBuildDuration('k8s-main', 'expired', 900);
    m.recordJob(true);
    m.recordJob(false);
    m.recordStartDuration('kubernetesPodman', 1.5);
    m.recordStartDuration('ec2', 2);
    m.recordStartDuration('popen', 0.01);
    m.recordStartFailure('ec2-main', 'EXECUTOR_CAPACITY');
    m.recordOrphansRemoved('k8s-main', 3);
    m.recordOrphansRemoved('k8s-main', 0);
    m.recordExpiry();
    m.recordCancel();
    m.recordCancel();
    m.setRunningActors(7);

    const text = await m.metrics();
    for (const line of [
      'quay_build_fallback_total{executor="ec2-main"} 1',
      'quay_build_ack_duration_seconds_count{executor="k8s-main"} 1',
      'quay_build_ack_duration_seconds_sum{executor="k8s-main"} 42',
      'quay_build_queue_duration_seconds_count{schedule_success="True"} 1',
      'quay_build_queue_duration_seconds_count{schedule_success="False"} 1',
      'quay_build_duration_seconds_count{executor="k8s-main",job_status="complete"} 1',
      'quay_build_duration_seconds_count{executor="k8s-main",job_status="expired"} 1',
      'quay_build_jobs_total{success="true"} 1',
      'quay_build_jobs_total{success="false"} 1',
      'quay_build_start_duration_seconds_count{executor="k8s"} 1',
      'quay_build_start_duration_seconds_count{executor="ec2"} 1',
      'quay_build_start_duration_seconds_count{executor="popen"} 1',
      'buildman_executor_start_failures_total{executor="ec2-main",reason="EXECUTOR_CAPACITY"} 1',
      'buildman_orphans_removed_total{executor="k8s-main"} 3',
      'buildman_build_expiries_total 1',
      'buildman_build_cancels_total 2',
      'buildman_running_actors 7',
    ]) {
      expect(text.split('\n')).toContain(line);
    }
    expect(text).toContain('# TYPE quay_build_jobs_total counter');
    expect(text).toContain('# TYPE quay_build_duration_seconds histogram');
    expect(text).toContain('# TYPE buildman_running_actors gauge');
    // Builds take minutes: the duration histogram has buckets past 10 s.
    expect(text).toContain('quay_build_duration_seconds_bucket{le="3600",executor="k8s-main",job_status="complete"} 1');
    expect(m.contentType).toContain('text/plain');
  });

  it('registries are separate, and process metrics are opt-in', async () => {
    const a = new BuildMetrics();
    const b = new BuildMetrics({ defaultMetrics: true });
    a.recordCancel();
    expect(await b.metrics()).toContain('buildman_build_cancels_total 0');
    expect(await b.metrics()).toContain('process_cpu_user_seconds_total');
    expect(await a.metrics()).not.toContain('process_cpu_user_seconds_total');
  });

  it('labels start durations by executor kind, as Quay does', () => {
    expect(['ec2', 'kubernetes', 'kubernetesPodman', 'popen'].map((k) => startDurationLabel(k as never))).toEqual(['ec2', 'k8s', 'k8s', 'popen']);
  });
});
