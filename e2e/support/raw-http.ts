import http from "node:http";

/** What a raw request's answer was: its status, headers and JSON body (undefined when empty). */
export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
}

/**
 * A POST over node:http whose body the test writes itself, piece by piece or not at all (fetch
 * would neither stream a held body nor send a Content-Encoding it did not apply); `answer`
 * settles as soon as the server answers, whether or not the body was ended.
 */
export function openPost(
  url: URL,
  headers: Record<string, string>,
): { req: http.ClientRequest; answer: Promise<RawAnswer> } {
  const req = http.request(url, { method: "POST", headers });
  let answered = false;
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    req.on("response", (res) => {
      answered = true;
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (text += d));
      res.on("end", () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }),
      );
      res.on("error", reject);
    });
    // Writing on after an early answer may meet a closed socket; that is expected then.
    req.on("error", (err) => (answered ? undefined : reject(err)));
  });
  return { req, answer };
}

/** A value of an API's /metrics (an unlabelled series). */
export async function apiMetric(baseUrl: string, name: string): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}
