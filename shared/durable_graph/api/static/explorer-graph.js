// Draws the graph frame's Mermaid text with the vendored Mermaid (served from this origin).
mermaid.initialize({ startOnLoad: true, securityLevel: "strict", theme: "neutral" });
