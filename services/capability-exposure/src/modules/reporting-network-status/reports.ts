import type { components } from '@aese/t8-openapi/reporting-network-status';

type Subscription = components['schemas']['NetworkStatusReportingSubscription'];
type Notification = components['schemas']['NetworkStatusReportingNotification'];

/** The abstracted congestion values (CongestionType) this SCEF reports. */
export const CONGESTION_TYPES = ['LOW', 'MEDIUM', 'HIGH'] as const;
export type CongestionKind = (typeof CONGESTION_TYPES)[number];

/** Highest level of LOW and of MEDIUM; above that it is HIGH. */
const LOW_UP_TO = 10;
const MEDIUM_UP_TO = 20;

export function congestionTypeOf(level: number): CongestionKind {
  if (level <= LOW_UP_TO) return 'LOW';
  return level <= MEDIUM_UP_TO ? 'MEDIUM' : 'HIGH';
}

/**
 * Whether a continuous subscription hears of a change of its area's level from `before` to
 * `after`. Without thresholds, of every change. With `thresholdValues`, when the level reaches
 * one of them from below or falls back under it, so the AS learns both that congestion set in and
 * that it ended. With `thresholdTypes`, when the abstracted value changes to or from one of them.
 */
export function worthReporting(sub: Subscription, before: number, after: number): boolean {
  if (before === after) return false;
  if (sub.thresholdValues) return sub.thresholdValues.some(t => (before < t && t <= after) || (after < t && t <= before));
  if (sub.thresholdTypes) {
    const [was, is] = [congestionTypeOf(before), congestionTypeOf(after)];
    return was !== is && (sub.thresholdTypes.includes(was) || sub.thresholdTypes.includes(is));
  }
  return true;
}

/** The report of a level: abstracted when the AS asked in abstracted values, the exact level otherwise. */
export function reportOf(sub: Subscription, level: number): Notification {
  return sub.thresholdTypes ? { subscription: sub.self!, nsiType: congestionTypeOf(level) } : { subscription: sub.self!, nsiValue: level };
}
