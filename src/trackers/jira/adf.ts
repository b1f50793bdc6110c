/**
 * Atlassian Document Format, the JSON Jira Cloud's REST v3 uses for rich
 * text (descriptions, comments), both ways and simply: orch writes plain
 * text or light Markdown, and reads descriptions to put in a prompt.
 */

export interface AdfNode {
  type: string;
  text?: string;
  attrs?: Record<string, unknown>;
  content?: AdfNode[];
}

export interface AdfDoc {
  type: 'doc';
  version: 1;
  content: AdfNode[];
}

/**
 * Text as an ADF document: fenced code blocks become `codeBlock`s, every
 * other blank-line separated block a paragraph whose line breaks are kept as
 * `hardBreak`s. Markdown marks are left as they are written.
 */
export function textToAdf(text: string): AdfDoc {
  const content: AdfNode[] = [];
  let paragraph: string[] = [];
  let code: { language: string; lines: string[] } | null = null;
  const endParagraph = () => {
    if (paragraph.length === 0) return;
    const inline: AdfNode[] = [];
    paragraph.forEach((line, n) => {
      if (n > 0) inline.push({ type: 'hardBreak' });
      if (line) inline.push({ type: 'text', text: line });
    });
    content.push({ type: 'paragraph', content: inline });
    paragraph = [];
  };
  const endCode = (block: { language: string; lines: string[] }) => {
    const body = block.lines.join('\n');
    content.push({
      type: 'codeBlock',
      ...(block.language ? { attrs: { language: block.language } } : {}),
      ...(body ? { content: [{ type: 'text', text: body }] } : {}),
    });
  };
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    const fence = /^```(.*)$/.exec(line);
    if (code) {
      if (fence) {
        endCode(code);
        code = null;
      } else code.lines.push(line);
    } else if (fence) {
      endParagraph();
      code = { language: (fence[1] ?? '').trim(), lines: [] };
    } else if (line.trim() === '') endParagraph();
    else paragraph.push(line.trimEnd());
  }
  endParagraph();
  if (code) endCode(code); // an unclosed fence runs to the end
  // Jira wants at least one block.
  if (content.length === 0) content.push({ type: 'paragraph', content: [] });
  return { type: 'doc', version: 1, content };
}

const BLOCKS = new Set([
  'paragraph',
  'heading',
  'blockquote',
  'panel',
  'codeBlock',
  'rule',
  'table',
  'mediaSingle',
]);

/** An ADF document (or the plain string Jira's v2 answers) as text: blocks separated by blank lines, lists as `- ` items. */
export function adfToText(doc: unknown): string {
  if (doc === null || doc === undefined) return '';
  if (typeof doc === 'string') return doc;
  return render(doc as AdfNode)
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function render(node: AdfNode): string {
  const children = () => (node.content ?? []).map(render);
  switch (node.type) {
    case 'text':
      return node.text ?? '';
    case 'hardBreak':
      return '\n';
    case 'mention':
    case 'emoji':
    case 'status':
      return String(node.attrs?.text ?? node.attrs?.shortName ?? '');
    case 'inlineCard':
    case 'blockCard':
      return String(node.attrs?.url ?? '');
    case 'rule':
      return '---\n\n';
    case 'codeBlock':
      return '```\n' + children().join('') + '\n```\n\n';
    case 'bulletList':
    case 'orderedList':
      return (
        (node.content ?? [])
          .map((item, i) => `${node.type === 'orderedList' ? `${i + 1}.` : '-'} ${render(item).trim()}`)
          .join('\n') + '\n\n'
      );
    case 'listItem':
      return children().join('\n').trim();
    case 'tableRow':
      return (
        children()
          .map((c) => c.trim())
          .join(' | ') + '\n'
      );
    default:
      return children().join('') + (BLOCKS.has(node.type) ? '\n\n' : '');
  }
}
