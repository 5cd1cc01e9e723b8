// The doctor behind the diagnostic endpoint: the handler keeps a monitor (opt-out with
// monitor: false) and serves GET …/doctor (the diagnosis, parts of RSS over the window
// included) and GET …/doctor/history (the raw samples and the monitor's own cost).
import { typeError } from '../core/errors';
import { checkThresholds, diagnose } from './diagnose';
import { SELF_SOURCE, type StatsSource } from '../api/source';
import { checkMonitorOptions, createMonitor, createMonitorAt, createMonitorOf, runningMonitor } from './monitor';
import type { DiagnoseThresholds, Diagnosis, Monitor, MonitorOptions } from './types';

/** Handler options this module reads. */
export const DOCTOR_HANDLER_OPTIONS = ['monitor', 'doctor'] as const;

export interface DoctorHandlerOptions {
  /**
   * The monitor behind GET …/doctor: true (default) uses the monitor running in this thread or
   * starts one with default options; an options object starts one with those; a Monitor is used
   * as is; false serves no doctor.
   */
  monitor?: boolean | MonitorOptions | Monitor;
  /** Thresholds for the endpoint's diagnosis (diagnose() options without context and now). */
  doctor?: DiagnoseThresholds;
}

export interface DoctorReply {
  status: number;
  body: unknown;
}

function isMonitor(v: unknown): v is Monitor {
  return typeof v === 'object' && v !== null && typeof (v as Monitor).samples === 'function' && typeof (v as Monitor).context === 'function';
}

// One diagnosis per new sample: scrapes and page polls between samples reuse it.
const cache = new WeakMap<Monitor, { key: string; diagnosis: Diagnosis }>();
// The thresholds of the last handler that set them, so metrics judge as its page does.
let endpointThresholds: DiagnoseThresholds = {};

export function diagnosisOf(monitor: Monitor, thresholds: DiagnoseThresholds = endpointThresholds): Diagnosis {
  const samples = monitor.samples();
  const key = `${samples.length}:${samples.length ? samples[samples.length - 1].time : 0}:${JSON.stringify(thresholds)}`;
  const hit = cache.get(monitor);
  if (hit && hit.key === key) return hit.diagnosis;
  const diagnosis = diagnose(samples, { ...thresholds, context: monitor.context() });
  cache.set(monitor, { key, diagnosis });
  return diagnosis;
}

function thresholdsOption(value: unknown, name: string): DiagnoseThresholds {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError('an object of diagnose() thresholds', name, value);
  // Every name and value checked here, at setup, under the option's own path.
  return checkThresholds(value, name);
}

/** The diagnosis of the monitor running in this thread, or null when none runs (for metrics). */
export function currentDiagnosis(): Diagnosis | null {
  const m = runningMonitor();
  return m ? diagnosisOf(m) : null;
}

export class DoctorRoutes {
  readonly #monitor: Monitor | null;
  readonly #thresholds: DiagnoseThresholds;
  /** Whether this endpoint started #monitor (rather than found it running or was given it). */
  readonly #started: boolean;

  /** `source`: whose memory the monitor watches (another process's never shares this thread's monitor). */
  constructor(option: unknown, doctor: unknown, name = 'options', source: StatsSource = SELF_SOURCE) {
    this.#thresholds = thresholdsOption(doctor, `${name}.doctor`);
    if (source.self && doctor !== undefined) endpointThresholds = this.#thresholds;
    if (!source.self) {
      if (option === false) this.#monitor = null;
      else if (isMonitor(option)) this.#monitor = option;
      else if (option === undefined || option === true) this.#monitor = createMonitorOf(source, undefined, `${name}.monitor`);
      else if (typeof option === 'object' && option !== null && !Array.isArray(option)) this.#monitor = createMonitorOf(source, option, `${name}.monitor`);
      else throw typeError('a boolean, a Monitor or monitor options', `${name}.monitor`, option);
      this.#started = this.#monitor !== null && !isMonitor(option);
      return;
    }
    const running = runningMonitor();
    if (option === false) {
      this.#monitor = null;
    } else if (isMonitor(option)) {
      this.#monitor = option;
    } else if (option === undefined || option === true) {
      this.#monitor = running ?? createMonitor();
    } else if (typeof option === 'object' && option !== null && !Array.isArray(option)) {
      // Checked even when a monitor already runs (and is used instead): bad options fail at setup.
      checkMonitorOptions(option, `${name}.monitor`);
      this.#monitor = running ?? createMonitorAt(option, `${name}.monitor`);
    } else {
      throw typeError('a boolean, a Monitor or monitor options', `${name}.monitor`, option);
    }
    this.#started = this.#monitor !== null && this.#monitor !== running && !isMonitor(option);
  }

  /** Whether GET …/doctor answers (false with monitor: false). */
  get enabled(): boolean {
    return this.#monitor !== null;
  }

  /** Stops the monitor this endpoint started, if it did: never one found running or passed in. */
  release(): void {
    if (this.#started) this.#monitor?.stop();
  }

  /** The diagnosis GET …/doctor serves, or null with the doctor off (for metrics of another process). */
  diagnosis(): Diagnosis | null {
    return this.#monitor ? diagnosisOf(this.#monitor, this.#thresholds) : null;
  }

  /** Answers GET …/doctor and GET …/doctor/history. */
  serve(route: '/doctor' | '/doctor/history'): DoctorReply {
    const m = this.#monitor;
    if (!m) return { status: 404, body: { error: 'the doctor is off on this endpoint (monitor: false)', code: 'ERR_DOCTOR_DISABLED' } };
    if (route === '/doctor/history') return { status: 200, body: { samples: m.samples(), monitor: m.totals() } };
    return { status: 200, body: { ...diagnosisOf(m, this.#thresholds), monitor: m.totals() } };
  }
}
