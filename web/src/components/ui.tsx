/** Small pieces used on every page. */
import type { ComponentChildren } from 'preact';

export function Pill(props: { kind: string; children: ComponentChildren; title?: string }) {
  return (
    <span class={`pill pill-${props.kind}`} title={props.title}>
      {props.children}
    </span>
  );
}

/** A task's status, with its terminal reason when it stopped. */
export function StatusPill(props: { status: string; reason?: string | null }) {
  return (
    <Pill kind={props.status} title={props.reason ?? undefined}>
      {props.status}
      {props.reason && props.reason !== props.status ? ` · ${props.reason}` : ''}
    </Pill>
  );
}

export function ErrorNote(props: { error: string | null }) {
  return props.error ? (
    <p class="error" role="alert">
      {props.error}
    </p>
  ) : null;
}

export function Section(props: {
  title: string;
  children: ComponentChildren;
  aside?: ComponentChildren;
  id?: string;
}) {
  return (
    <section class="card" id={props.id}>
      <header class="card-head">
        <h2>{props.title}</h2>
        {props.aside}
      </header>
      {props.children}
    </section>
  );
}
