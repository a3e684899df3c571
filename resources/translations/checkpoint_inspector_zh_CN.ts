<?xml version="1.0" encoding="utf-8"?>
<!DOCTYPE TS>
<TS version="2.1" language="zh_CN">
<context>
    <name>AllowGlobalsQuestion</name>
    <message>
        <source>Allow globals for {name}?</source>
        <translation>允许 {name} 使用这些全局对象？</translation>
    </message>
    <message>
        <source>Allow exactly these</source>
        <translation>仅允许这些</translation>
    </message>
    <message>
        <source>Allow exactly this</source>
        <translation>仅允许这一个</translation>
    </message>
    <message>
        <source>Copy code</source>
        <translation>复制代码</translation>
    </message>
    <message>
        <source>Copy the code that loads this file with exactly these allowed</source>
        <translation>复制恰好允许这些全局对象来加载此文件的代码</translation>
    </message>
    <message>
        <source>Weights-only loading refused {name}: its pickle needs these globals:</source>
        <translation>weights-only 加载拒绝了 {name}：它的 pickle 需要以下全局对象：</translation>
    </message>
    <message>
        <source>Weights-only loading refused {name}: its pickle needs this global:</source>
        <translation>weights-only 加载拒绝了 {name}：它的 pickle 需要以下全局对象：</translation>
    </message>
    <message>
        <source>{globals} can never be allowed (torch blocks it, or it can run code); only trusting the whole file would load it.</source>
        <translation>{globals} 永远不能被允许（torch 会阻止它，或者它能执行代码）；只有信任整个文件才能加载。</translation>
    </message>
    <message>
        <source>&lt;b&gt;Allow exactly these&lt;/b&gt; keeps weights-only loading and lets torch import only these, for this tab. &lt;b&gt;Trust the whole file&lt;/b&gt; loads it without weights_only.</source>
        <translation>&lt;b&gt;仅允许这些&lt;/b&gt;：保持 weights-only 加载，仅在此标签页中让 torch 导入这些对象。&lt;b&gt;信任整个文件&lt;/b&gt;：不使用 weights_only 加载。</translation>
    </message>
    <message>
        <source>&lt;b&gt;Allow exactly this&lt;/b&gt; keeps weights-only loading and lets torch import only this one, for this tab. &lt;b&gt;Trust the whole file&lt;/b&gt; loads it without weights_only.</source>
        <translation>&lt;b&gt;仅允许这一个&lt;/b&gt;：保持 weights-only 加载，仅在此标签页中让 torch 导入这一个对象。&lt;b&gt;信任整个文件&lt;/b&gt;：不使用 weights_only 加载。</translation>
    </message>
    <message>
        <source>Trust the whole file…</source>
        <translation>信任整个文件…</translation>
    </message>
</context>
<context>
    <name>BusyRow</name>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
</context>
<context>
    <name>CheckpointTab</name>
    <message>
        <source>Substring</source>
        <extracomment>Trees with more tensors than this open collapsed below the first level and filter-expand less. The busy bar is told of a static read&apos;s progress this often at most (seconds).</extracomment>
        <translation>子串</translation>
    </message>
    <message>
        <source>Glob</source>
        <translation>通配符</translation>
    </message>
    <message>
        <source>Regex</source>
        <translation>正则表达式</translation>
    </message>
    <message>
        <source>{name} was saved on CUDA, and this machine has no CUDA device.</source>
        <extracomment>Said when the engine&apos;s error carries no sentence of its own (translated at display time).</extracomment>
        <translation>{name} 保存在 CUDA 上，而本机没有 CUDA 设备。</translation>
    </message>
    <message>
        <source>{name} needs a device this machine does not have.</source>
        <translation>{name} 需要本机没有的设备。</translation>
    </message>
    <message>
        <source>{name} needs globals that weights-only loading does not allow.</source>
        <translation>{name} 需要 weights-only 加载不允许的全局对象。</translation>
    </message>
    <message>
        <source>{name} is damaged: torch could not read it.</source>
        <translation>{name} 已损坏：torch 无法读取。</translation>
    </message>
    <message>
        <source>{name} no longer exists.</source>
        <translation>{name} 已不存在。</translation>
    </message>
    <message>
        <source>The torch worker stopped while loading {name}.</source>
        <translation>加载 {name} 时 torch 工作进程停止了。</translation>
    </message>
    <message>
        <source>{name} holds TorchScript code, which runs if loaded with torch.jit.load; the tensors are shown from the static read.</source>
        <translation>{name} 含有 TorchScript 代码，用 torch.jit.load 加载时会运行这些代码；张量按静态读取结果显示。</translation>
    </message>
    <message>
        <source>{name} can run code on this computer, so it is not handed to torch.</source>
        <translation>{name} 可以在这台计算机上运行代码，因此不会交给 torch。</translation>
    </message>
    <message>
        <source>{name} needs a global that can never be allowed; only trusting it would load it.</source>
        <translation>{name} 需要一个永远不能被允许的全局对象；只有信任该文件才能加载。</translation>
    </message>
    <message>
        <source>{name} needs a global the loader cannot import.</source>
        <translation>{name} 需要一个加载器无法导入的全局对象。</translation>
    </message>
    <message>
        <source>torch could not load {name}.</source>
        <translation>torch 无法加载 {name}。</translation>
    </message>
    <message>
        <source>Trust this file…</source>
        <translation>信任此文件…</translation>
    </message>
    <message>
        <source>Allow or trust…</source>
        <translation>允许或信任…</translation>
    </message>
    <message>
        <source>read {fetched} of {size} in {requests} requests</source>
        <translation>已读取 {fetched}（共 {size}），{requests} 次请求</translation>
    </message>
    <message>
        <source>{count} tensor</source>
        <translation>{count} 个张量</translation>
    </message>
    <message>
        <source>{count} tensors</source>
        <translation>{count} 个张量</translation>
    </message>
    <message>
        <source>{total} params in all tensors</source>
        <translation>全部张量共 {total} 个参数</translation>
    </message>
    <message>
        <source>{params} params</source>
        <translation>{params} 个参数</translation>
    </message>
    <message>
        <source>{model} model params · {total} in all tensors</source>
        <translation>模型 {model} 个参数 · 全部张量共 {total} 个</translation>
    </message>
    <message>
        <source>+{n} more</source>
        <translation>另有 {n} 种</translation>
    </message>
    <message>
        <source>saved on {devices}</source>
        <translation>保存于 {devices}</translation>
    </message>
    <message>
        <source>{count} data file</source>
        <translation>{count} 个数据文件</translation>
    </message>
    <message>
        <source>{count} data files</source>
        <translation>{count} 个数据文件</translation>
    </message>
    <message>
        <source>metadata: {entries}</source>
        <translation>元数据：{entries}</translation>
    </message>
    <message>
        <source>Filter keys…</source>
        <extracomment>the path as labels show it: a URL without its user name, password or query (tokens)</extracomment>
        <translation>筛选键…</translation>
    </message>
    <message>
        <source>Expand all</source>
        <translation>全部展开</translation>
    </message>
    <message>
        <source>Collapse all</source>
        <translation>全部折叠</translation>
    </message>
    <message>
        <source>Code files…</source>
        <translation>代码文件…</translation>
    </message>
    <message>
        <source>Copy key</source>
        <translation>复制键</translation>
    </message>
    <message>
        <source>Copy row</source>
        <translation>复制行</translation>
    </message>
    <message>
        <source>{name} is {size}. Download the whole file into the cache folder {folder}?</source>
        <translation>{name} 有 {size}。要把整个文件下载到缓存文件夹 {folder} 吗？</translation>
    </message>
    <message>
        <source>Reading {name} from {host}…</source>
        <translation>正在从 {host} 读取 {name}…</translation>
    </message>
    <message>
        <source>Reading {name}: its pickle…</source>
        <translation>正在读取 {name}：它的 pickle…</translation>
    </message>
    <message>
        <source>Reading {name}: laying out its tree…</source>
        <translation>正在读取 {name}：排列它的树…</translation>
    </message>
    <message>
        <source>Reading {name}…</source>
        <translation>正在读取 {name}…</translation>
    </message>
    <message>
        <source>Downloading {name}: {done} of {total}…</source>
        <translation>正在下载 {name}：{done} / {total}…</translation>
    </message>
    <message>
        <source>; using the copy downloaded on {date}</source>
        <translation>；使用 {date} 下载的副本</translation>
    </message>
    <message>
        <source>; from the copy just downloaded into the cache folder</source>
        <translation>；来自刚下载到缓存文件夹的副本</translation>
    </message>
    <message>
        <source>Downloading {name} was cancelled; nothing was kept in the cache folder.</source>
        <translation>已取消下载 {name}；缓存文件夹中未保留任何内容。</translation>
    </message>
    <message>
        <source>{name} could not be downloaded because of an unexpected error.</source>
        <translation>由于意外错误，无法下载 {name}。</translation>
    </message>
    <message>
        <source>Copy loading code</source>
        <translation>复制加载代码</translation>
    </message>
    <message>
        <source>Loading was cancelled; the tree shows what the file holds.</source>
        <translation>加载已取消；树中显示的是文件包含的内容。</translation>
    </message>
    <message>
        <source>Loading with torch was cancelled.</source>
        <translation>已取消用 torch 加载。</translation>
    </message>
    <message>
        <source>Load again</source>
        <translation>重新加载</translation>
    </message>
    <message>
        <source>Opening {name} was cancelled.</source>
        <translation>已取消打开 {name}。</translation>
    </message>
    <message>
        <source>Open again</source>
        <extracomment>The buttons of the error panel, by action (``LOAD_ON_SUGGESTED`` names its device).</extracomment>
        <translation>重新打开</translation>
    </message>
    <message>
        <source>Not loaded with torch: shown from the static read only, so nothing in the file ran.</source>
        <extracomment>What the line under the summary says in each state (nothing where it is not listed).</extracomment>
        <translation>未用 torch 加载：仅显示静态读取的结果，文件中的任何内容都没有执行。</translation>
    </message>
    <message>
        <source>The torch engine is not available: “Loaded on” stays empty.</source>
        <translation>torch 引擎不可用：“加载位置”一列保持为空。</translation>
    </message>
    <message>
        <source>Loading with torch (map location: {where})…</source>
        <translation>正在用 torch 加载（映射位置：{where}）…</translation>
    </message>
    <message>
        <source>{name} could not be read because of an unexpected error.</source>
        <translation>由于意外错误，无法读取 {name}。</translation>
    </message>
    <message>
        <source>Try again</source>
        <extracomment>After a failure, doing the same again is &quot;Try again&quot;.</extracomment>
        <translation>重试</translation>
    </message>
    <message>
        <source>torch.load itself:</source>
        <translation>torch.load 本身：</translation>
    </message>
    <message>
        <source>Loaded with torch (map location: {where}) in {time}</source>
        <translation>已用 torch 加载（映射位置：{where}），用时 {time}</translation>
    </message>
    <message>
        <source>; saved on {devices}, which this machine lacks, so loaded on {target}</source>
        <translation>；保存于 {devices}，本机没有该设备，因此加载到 {target}</translation>
    </message>
    <message>
        <source>; trusted: weights_only=False, pickle module {module}</source>
        <translation>；已信任：weights_only=False，pickle 模块 {module}</translation>
    </message>
    <message>
        <source>; allowed for this tab: {names}</source>
        <translation>；此标签页已允许：{names}</translation>
    </message>
    <message>
        <source>.</source>
        <translation>。</translation>
    </message>
    <message>
        <source>It references: {names}.</source>
        <translation>它引用了：{names}。</translation>
    </message>
    <message>
        <source>Load on {device}</source>
        <translation>加载到 {device}</translation>
    </message>
    <message>
        <source>Download and load</source>
        <translation>下载并加载</translation>
    </message>
    <message>
        <source>Read where it lives: “Loaded on” needs the whole file on this machine; Download and load fetches it into the cache folder and loads that copy.</source>
        <extracomment>A file read where it lives is never handed to torch: loading needs the whole file here.</extracomment>
        <translation>在原处读取：“加载到”需要本机上有完整文件；“下载并加载”会把它下载到缓存文件夹并加载该副本。</translation>
    </message>
    <message>
        <source>Read where it lives: “Loaded on” needs the whole file on this machine, every file of the set; download the set with its own tools (e.g. hf download) and open the local copy.</source>
        <translation>在原处读取：“加载到”需要本机上有完整文件，即该组的每个文件；请用其自身的工具（例如 hf download）下载该组，再打开本地副本。</translation>
    </message>
    <message>
        <source>Read where it lives: “Loaded on” needs the whole file on this machine and the torch engine.</source>
        <translation>在原处读取：“加载到”需要本机上有完整文件以及 torch 引擎。</translation>
    </message>
    <message>
        <source>Globals outside torch&apos;s weights-only set: {names}</source>
        <translation>超出 torch weights-only 允许范围的全局对象：{names}</translation>
    </message>
    <message>
        <source>The pickle references only what weights-only loading allows.</source>
        <translation>该 pickle 只引用 weights-only 加载允许的内容。</translation>
    </message>
    <message>
        <source>{name} would be read differently by another reader ({why}), so what torch runs may not be what is shown. It is shown from its static read only and is not handed to torch.</source>
        <translation>{name} 会被另一种读取器读成不同的内容（{why}），因此 torch 运行的可能不是这里显示的内容。它仅以静态读取显示，不会交给 torch。</translation>
    </message>
    <message>
        <source>You trusted {name} in this tab, so it is loaded with weights_only=False and its pickle may call {globals}.</source>
        <translation>你已在此标签页中信任 {name}，因此它以 weights_only=False 加载，其 pickle 可能调用 {globals}。</translation>
    </message>
    <message>
        <source>{name} references {globals}, which can run code on this computer. It is shown from its static read only and is not handed to torch.</source>
        <translation>{name} 引用了 {globals}，它们能在这台计算机上执行代码。此文件仅显示静态读取的结果，不会交给 torch 加载。</translation>
    </message>
    <message>
        <source>{0} tensors hold NaN or Inf: {1}</source>
        <translation>{0} 个张量含有 NaN 或 Inf：{1}</translation>
    </message>
    <message>
        <source>No tensor holds NaN or Inf.</source>
        <translation>没有张量含有 NaN 或 Inf。</translation>
    </message>
    <message>
        <source>Not a valid regular expression: {error}</source>
        <translation>不是有效的正则表达式：{error}</translation>
    </message>
    <message>
        <source>No key or label matches “{text}”.</source>
        <translation>没有键或标注匹配“{text}”。</translation>
    </message>
</context>
<context>
    <name>CheckpointTreeModel</name>
    <message>
        <source>Name</source>
        <extracomment>English titles, translated in ``headerData`` (context &quot;CheckpointTreeModel&quot;).</extracomment>
        <translation>名称</translation>
    </message>
    <message>
        <source>Shape</source>
        <translation>形状</translation>
    </message>
    <message>
        <source>DType</source>
        <translation>dtype</translation>
    </message>
    <message>
        <source>Saved on</source>
        <translation>保存位置</translation>
    </message>
    <message>
        <source>Loaded on</source>
        <translation>加载位置</translation>
    </message>
    <message>
        <source>Params</source>
        <translation>参数量</translation>
    </message>
    <message>
        <source>Size</source>
        <translation>大小</translation>
    </message>
    <message>
        <source>NaN/Inf</source>
        <translation>NaN/Inf</translation>
    </message>
    <message>
        <source>L2 norm</source>
        <translation>L2 范数</translation>
    </message>
    <message>
        <source>Shard</source>
        <translation>分片</translation>
    </message>
    <message>
        <source>{name} → same as {target}</source>
        <extracomment>Columns right-aligned because they hold numbers. Columns by number and Qt&apos;s roles as plain ints: ``data()`` runs for every painted cell, and constructing enums there costs more than the rest of it.</extracomment>
        <translation>{name} → 与 {target} 相同</translation>
    </message>
    <message>
        <source>{n} item</source>
        <translation>{n} 项</translation>
    </message>
    <message>
        <source>{n} items</source>
        <translation>{n} 项</translation>
    </message>
    <message>
        <source>none</source>
        <translation>无</translation>
    </message>
    <message>
        <source>{n} tensor</source>
        <translation>{n} 个张量</translation>
    </message>
    <message>
        <source>{n} tensors</source>
        <translation>{n} 个张量</translation>
    </message>
    <message>
        <source>(the whole file)</source>
        <translation>（整个文件）</translation>
    </message>
    <message>
        <source>{count} parameters</source>
        <translation>{count} 个参数</translation>
    </message>
    <message>
        <source>{count} bytes</source>
        <translation>{count} 字节</translation>
    </message>
    <message>
        <source>{count} chunk(s):</source>
        <translation>{count} 个块：</translation>
    </message>
    <message>
        <source>… {count} more</source>
        <translation>… 另有 {count} 个</translation>
    </message>
</context>
<context>
    <name>CodeFilesDialog</name>
    <message>
        <source>Code files of {name}</source>
        <translation>{name} 的代码文件</translation>
    </message>
    <message>
        <source>{count} code file(s), shown as text; nothing is run.</source>
        <translation>{count} 个代码文件，仅以文本显示；不会运行任何代码。</translation>
    </message>
    <message>
        <source>an unexpected error.</source>
        <translation>意外错误。</translation>
    </message>
    <message>
        <source>The code files could not be read: {message}</source>
        <translation>无法读取代码文件：{message}</translation>
    </message>
</context>
<context>
    <name>CustomMapLocationDialog</name>
    <message>
        <source>Custom map location</source>
        <translation>自定义映射位置</translation>
    </message>
    <message>
        <source>A device (cpu, meta, cuda:N, mps), or saved-&gt;target pairs separated by commas, e.g. cuda:1-&gt;cuda:0, cuda:2-&gt;cpu (→ works as well as -&gt;):</source>
        <translation>一个设备（cpu、meta、cuda:N、mps），或用逗号分隔的“保存设备-&gt;目标设备”对，例如 cuda:1-&gt;cuda:0, cuda:2-&gt;cpu（→ 与 -&gt; 均可）：</translation>
    </message>
</context>
<context>
    <name>DangerBanner</name>
    <message>
        <source>Trust this file…</source>
        <translation>信任此文件…</translation>
    </message>
</context>
<context>
    <name>DetailPanel</name>
    <message>
        <source>Statistics</source>
        <translation>统计</translation>
    </message>
    <message>
        <source>Histogram</source>
        <translation>直方图</translation>
    </message>
    <message>
        <source>Heatmap</source>
        <translation>热力图</translation>
    </message>
    <message>
        <source>Values</source>
        <translation>数值</translation>
    </message>
    <message>
        <source>Select a tensor to see its statistics and values.</source>
        <translation>选择一个张量以查看其统计信息和数值。</translation>
    </message>
    <message>
        <source>(the whole file)</source>
        <translation>（整个文件）</translation>
    </message>
    <message>
        <source>The engine is not running, so values cannot be read.</source>
        <translation>引擎未运行，无法读取数值。</translation>
    </message>
    <message>
        <source>min</source>
        <extracomment>A page of the values table: this many rows × columns per ``slice`` job. The heatmap shows at most this many rows and columns (the top-left block of a larger matrix). A selection of at most this many values can be copied. An answer still missing this long after the selection moved on is cancelled in the engine (statistics stop at their next block; a slice restarts the worker: only worth it for a job that may run much longer). (stats field, label) in display order; labels are translated where shown (context DetailPanel).</extracomment>
        <translation>最小值</translation>
    </message>
    <message>
        <source>max</source>
        <translation>最大值</translation>
    </message>
    <message>
        <source>mean</source>
        <translation>均值</translation>
    </message>
    <message>
        <source>std (n−1)</source>
        <translation>标准差 (n−1)</translation>
    </message>
    <message>
        <source>mean |x|</source>
        <translation>|x| 均值</translation>
    </message>
    <message>
        <source>L2 norm</source>
        <translation>L2 范数</translation>
    </message>
    <message>
        <source>zeros</source>
        <translation>零值</translation>
    </message>
    <message>
        <source>values</source>
        <translation>取值</translation>
    </message>
    <message>
        <source>The sample standard deviation, as torch.std gives it: divided by n − 1 (finite values)</source>
        <translation>样本标准差，与 torch.std 相同：除以 n − 1（有限值）</translation>
    </message>
    <message>
        <source>“{part}” is part of the {layout} tensor “{whole}”; statistics and values are read for plain tensors only.</source>
        <translation>“{part}”是 {layout} 张量“{whole}”的一部分；统计信息和数值只对普通张量读取。</translation>
    </message>
    <message>
        <source>{0} tensors are listed, not read.</source>
        <translation>列出了 {0} 个张量，但未读取。</translation>
    </message>
    <message>
        <source>Computing statistics…</source>
        <translation>正在计算统计信息…</translation>
    </message>
    <message>
        <source>{0} values</source>
        <translation>{0} 个值</translation>
    </message>
    <message>
        <source>The tensor could not be read.</source>
        <translation>无法读取该张量。</translation>
    </message>
    <message>
        <source>computing:</source>
        <translation>计算：</translation>
    </message>
    <message>
        <source> (of the magnitudes |z|)</source>
        <translation>（基于模长 |z|）</translation>
    </message>
    <message>
        <source> (of the raw bytes as {0})</source>
        <translation>（将原始字节按 {0} 解释）</translation>
    </message>
    <message>
        <source>Statistics in {0}{1}.</source>
        <translation>统计信息用时 {0}{1}。</translation>
    </message>
    <message>
        <source>{0} finite values</source>
        <translation>{0} 个有限值</translation>
    </message>
    <message>
        <source>True ×{0}, False ×{1}</source>
        <translation>True ×{0}，False ×{1}</translation>
    </message>
    <message>
        <source> … {0} more</source>
        <translation> … 另有 {0} 个</translation>
    </message>
    <message>
        <source>too many distinct values to count</source>
        <translation>不同取值过多，无法计数</translation>
    </message>
    <message>
        <source>first {0} × {1} of {2} × {3}</source>
        <translation>前 {0} × {1}（共 {2} × {3}）</translation>
    </message>
</context>
<context>
    <name>DiffTableModel</name>
    <message>
        <source>equal</source>
        <extracomment>The labels of ``inspector.core.diff.STATUS_LABELS`` (which names each status) as lupdate must see them to carry their translations (context DiffTableModel); a test checks that each one is translated.</extracomment>
        <translation>相同</translation>
    </message>
    <message>
        <source>changed</source>
        <translation>已改变</translation>
    </message>
    <message>
        <source>dtype changed</source>
        <translation>dtype 改变</translation>
    </message>
    <message>
        <source>shape changed</source>
        <translation>形状改变</translation>
    </message>
    <message>
        <source>renamed?</source>
        <translation>重命名？</translation>
    </message>
    <message>
        <source>only in A</source>
        <translation>仅在 A 中</translation>
    </message>
    <message>
        <source>only in B</source>
        <translation>仅在 B 中</translation>
    </message>
    <message>
        <source>unreadable</source>
        <translation>无法读取</translation>
    </message>
    <message>
        <source>Status</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Key in A</source>
        <translation>A 中的键</translation>
    </message>
    <message>
        <source>Key in B</source>
        <translation>B 中的键</translation>
    </message>
    <message>
        <source>Shape</source>
        <translation>形状</translation>
    </message>
    <message>
        <source>DType</source>
        <translation>dtype</translation>
    </message>
    <message>
        <source>max |a−b|</source>
        <translation>最大 |a−b|</translation>
    </message>
    <message>
        <source>rel. L2 change</source>
        <translation>相对 L2 变化</translation>
    </message>
    <message>
        <source>cosine</source>
        <translation>余弦相似度</translation>
    </message>
    <message>
        <source>{0} positions are NaN/Inf on one side only</source>
        <translation>有 {0} 个位置仅在一侧为 NaN/Inf</translation>
    </message>
</context>
<context>
    <name>DiffWindow</name>
    <message>
        <source>All tensors</source>
        <extracomment>(filter label, statuses kept; None keeps all)</extracomment>
        <translation>所有张量</translation>
    </message>
    <message>
        <source>Differences only</source>
        <translation>仅显示差异</translation>
    </message>
    <message>
        <source>Changed values</source>
        <translation>数值有变化</translation>
    </message>
    <message>
        <source>Shape or dtype changed</source>
        <translation>形状或 dtype 改变</translation>
    </message>
    <message>
        <source>Only in A</source>
        <translation>仅在 A 中</translation>
    </message>
    <message>
        <source>Only in B</source>
        <translation>仅在 B 中</translation>
    </message>
    <message>
        <source>Renamed?</source>
        <translation>重命名？</translation>
    </message>
    <message>
        <source>Compare checkpoints</source>
        <translation>比较检查点</translation>
    </message>
    <message>
        <source>A</source>
        <translation>A</translation>
    </message>
    <message>
        <source>B</source>
        <translation>B</translation>
    </message>
    <message>
        <source>Browse…</source>
        <translation>浏览…</translation>
    </message>
    <message>
        <source>Swap</source>
        <translation>交换</translation>
    </message>
    <message>
        <source>Compare</source>
        <translation>比较</translation>
    </message>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Show</source>
        <translation>显示</translation>
    </message>
    <message>
        <source>Choose two checkpoints and press Compare.</source>
        <translation>选择两个检查点，然后点击“比较”。</translation>
    </message>
    <message>
        <source>Choose a file for A and for B.</source>
        <translation>请为 A 和 B 各选择一个文件。</translation>
    </message>
    <message>
        <source>“{0}” does not exist.</source>
        <translation>“{0}”不存在。</translation>
    </message>
    <message>
        <source>The engine is not running, so nothing can be compared.</source>
        <translation>引擎未运行，无法比较。</translation>
    </message>
    <message>
        <source>Comparing…</source>
        <translation>正在比较…</translation>
    </message>
    <message>
        <source>Comparing {0} with {1}…</source>
        <translation>正在比较 {0} 与 {1}…</translation>
    </message>
    <message>
        <source>The comparison was cancelled.</source>
        <translation>比较已取消。</translation>
    </message>
    <message>
        <source>The comparison failed.</source>
        <translation>比较失败。</translation>
    </message>
    <message>
        <source>Identical: {0}</source>
        <translation>相同：{0}</translation>
    </message>
    <message>
        <source>comparing:</source>
        <translation>比较：</translation>
    </message>
    <message>
        <source>  ·  compared in {0}</source>
        <translation>  ·  比较用时 {0}</translation>
    </message>
    <message>
        <source>Not identical: {0}.</source>
        <translation>不完全相同：{0}。</translation>
    </message>
    <message>
        <source>Key prefix: {0}.</source>
        <translation>键前缀：{0}。</translation>
    </message>
    <message>
        <source>Export A without “{0}”…</source>
        <translation>导出不含“{0}”的 A…</translation>
    </message>
    <message>
        <source>Export B without “{0}”…</source>
        <translation>导出不含“{0}”的 B…</translation>
    </message>
    <message>
        <source>Choose a checkpoint</source>
        <translation>选择一个检查点</translation>
    </message>
    <message>
        <source>All files (*)</source>
        <translation>所有文件 (*)</translation>
    </message>
</context>
<context>
    <name>DownloadCacheDialog</name>
    <message>
        <source>Downloaded Checkpoints</source>
        <translation>已下载的检查点</translation>
    </message>
    <message>
        <source>“Download and load” keeps the whole copy of a remote file here for torch; a copy of the same URL and version is used again without downloading it. Clearing it loses nothing that cannot be downloaded again.</source>
        <translation>“下载并加载”把远程文件的完整副本保存在这里供 torch 使用；相同 URL 和版本的副本会直接复用，不再下载。清空它不会丢失任何无法重新下载的内容。</translation>
    </message>
    <message>
        <source>Open Folder</source>
        <translation>打开文件夹</translation>
    </message>
    <message>
        <source>Clear…</source>
        <translation>清空…</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>No downloaded copies.</source>
        <translation>没有已下载的副本。</translation>
    </message>
    <message>
        <source>1 downloaded copy, {size}</source>
        <translation>1 个已下载的副本，{size}</translation>
    </message>
    <message>
        <source>{count} downloaded copies, {size} in all</source>
        <translation>{count} 个已下载的副本，共 {size}</translation>
    </message>
    <message>
        <source>Clear downloaded checkpoints</source>
        <translation>清空已下载的检查点</translation>
    </message>
    <message>
        <source>Remove every downloaded copy ({size}) from {folder}?</source>
        <translation>要从 {folder} 删除所有已下载的副本（{size}）吗？</translation>
    </message>
</context>
<context>
    <name>EngineBridge</name>
    <message>
        <source>The loader could not start.</source>
        <extracomment>How long a request about a tensor&apos;s values may wait behind another job before it moves to the second worker (about what a short load takes; the second worker&apos;s own start takes seconds). running jobs by (lane, id): strong references until they end Each accelerator&apos;s free and total memory, as the worker said when it was ready.</extracomment>
        <translation>加载器无法启动。</translation>
    </message>
</context>
<context>
    <name>ErrorPanel</name>
    <message>
        <source>Details…</source>
        <translation>详情…</translation>
    </message>
</context>
<context>
    <name>ExportDialog</name>
    <message>
        <source>Export “{name}”</source>
        <extracomment>The fields&apos; names, in the order they are laid out (their labels are set in ``_retranslate``).</extracomment>
        <translation>导出“{name}”</translation>
    </message>
    <message>
        <source>Browse…</source>
        <translation>浏览…</translation>
    </message>
    <message>
        <source>as saved — or cpu, cuda:0, or cuda:1→cuda:0</source>
        <translation>按保存时的设备 — 或 cpu、cuda:0、cuda:1→cuda:0</translation>
    </message>
    <message>
        <source>keep</source>
        <translation>保持不变</translation>
    </message>
    <message>
        <source>e.g. model (written in place of the whole file)</source>
        <translation>例如 model（只写出该子树，代替整个文件）</translation>
    </message>
    <message>
        <source>globs, comma-separated (empty: everything)</source>
        <translation>通配符，逗号分隔（留空：全部）</translation>
    </message>
    <message>
        <source>e.g. module., _orig_mod.</source>
        <translation>例如 module., _orig_mod.</translation>
    </message>
    <message>
        <source>one rule a line, applied in order:  REGEX=&gt;REPLACEMENT</source>
        <translation>每行一条规则，按顺序应用：  REGEX=&gt;REPLACEMENT</translation>
    </message>
    <message>
        <source>safetensors __metadata__: one KEY=VALUE a line</source>
        <translation>safetensors __metadata__：每行一个 KEY=VALUE</translation>
    </message>
    <message>
        <source>5GB (the most tensor data one shard holds)</source>
        <translation>5GB（单个分片最多容纳的张量数据量）</translation>
    </message>
    <message>
        <source>refuse to replace an existing file</source>
        <translation>不替换已存在的文件</translation>
    </message>
    <message>
        <source>replace an existing file</source>
        <translation>替换已存在的文件</translation>
    </message>
    <message>
        <source>Target</source>
        <translation>目标文件</translation>
    </message>
    <message>
        <source>Format</source>
        <translation>格式</translation>
    </message>
    <message>
        <source>Shard size</source>
        <translation>分片大小</translation>
    </message>
    <message>
        <source>Device</source>
        <translation>设备</translation>
    </message>
    <message>
        <source>Dtype (floating tensors)</source>
        <translation>dtype（浮点张量）</translation>
    </message>
    <message>
        <source>Subtree</source>
        <translation>子树</translation>
    </message>
    <message>
        <source>Include</source>
        <translation>包含</translation>
    </message>
    <message>
        <source>Exclude</source>
        <translation>排除</translation>
    </message>
    <message>
        <source>Strip prefixes</source>
        <translation>去除前缀</translation>
    </message>
    <message>
        <source>Rename rules</source>
        <translation>重命名规则</translation>
    </message>
    <message>
        <source>Metadata</source>
        <translation>元数据</translation>
    </message>
    <message>
        <source>Existing target</source>
        <translation>目标已存在时</translation>
    </message>
    <message>
        <source>before</source>
        <translation>之前</translation>
    </message>
    <message>
        <source>after</source>
        <translation>之后</translation>
    </message>
    <message>
        <source>note</source>
        <translation>说明</translation>
    </message>
    <message>
        <source>Export</source>
        <translation>导出</translation>
    </message>
    <message>
        <source>Trust the file in its tab and open Export again, or export to safetensors: its tensors are read straight from the file, whose pickle is not run, so it needs no trust.</source>
        <translation>请在该文件的标签页中信任它后重新打开导出，或导出为 safetensors：其张量直接从文件读取，不运行文件中的 pickle，因此无需信任。</translation>
    </message>
    <message>
        <source>Choose a target file.</source>
        <translation>请选择目标文件。</translation>
    </message>
    <message>
        <source>“{name}” is the file just written; to export again, choose another target or to replace it.</source>
        <translation>“{name}”就是刚写出的文件；如要再次导出，请选择其他目标，或选择替换它。</translation>
    </message>
    <message>
        <source>“{name}” exists; choose to replace it or rename.</source>
        <translation>“{name}”已存在；请选择替换或换个文件名。</translation>
    </message>
    <message>
        <source>alias of {key} (stored once)</source>
        <translation>{key} 的别名（只存储一次）</translation>
    </message>
    <message>
        <source>copied apart from {key}</source>
        <translation>与 {key} 分开复制</translation>
    </message>
    <message>
        <source>COLLISION</source>
        <translation>冲突</translation>
    </message>
    <message>
        <source>(tensor)</source>
        <translation>（张量）</translation>
    </message>
    <message>
        <source>{written} tensors written, {left} left out; about {size}.</source>
        <translation>写出 {written} 个张量，略去 {left} 个；约 {size}。</translation>
    </message>
    <message>
        <source>Other values — {values}</source>
        <translation>其他值 — {values}</translation>
    </message>
    <message>
        <source>Export to</source>
        <translation>导出到</translation>
    </message>
    <message>
        <source>The engine is not running, so nothing can be exported.</source>
        <translation>引擎未运行，无法导出。</translation>
    </message>
    <message>
        <source>Exporting…</source>
        <translation>正在导出…</translation>
    </message>
    <message>
        <source>Cancelling…</source>
        <translation>正在取消…</translation>
    </message>
    <message>
        <source>writing:</source>
        <translation>写入：</translation>
    </message>
    <message>
        <source>Wrote {tensors} tensors, {size} in {time}; verified.</source>
        <translation>已写出 {tensors} 个张量，共 {size}，用时 {time}；已校验。</translation>
    </message>
    <message>
        <source>Not written: {values}.</source>
        <translation>未写出：{values}。</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>The export was cancelled; nothing was written.</source>
        <translation>导出已取消；没有写出任何内容。</translation>
    </message>
    <message>
        <source>The export failed.</source>
        <translation>导出失败。</translation>
    </message>
</context>
<context>
    <name>HeatmapPane</name>
    <message>
        <source>Heatmap</source>
        <translation>热力图</translation>
    </message>
    <message>
        <source>column</source>
        <translation>列</translation>
    </message>
    <message>
        <source>row</source>
        <translation>行</translation>
    </message>
</context>
<context>
    <name>HistogramPane</name>
    <message>
        <source>Histogram</source>
        <translation>直方图</translation>
    </message>
    <message>
        <source>Log count</source>
        <translation>对数计数</translation>
    </message>
    <message>
        <source>value</source>
        <translation>值</translation>
    </message>
    <message>
        <source>count</source>
        <translation>计数</translation>
    </message>
</context>
<context>
    <name>LoadOptionsBar</name>
    <message>
        <source>As saved</source>
        <extracomment>The combo&apos;s item data are canonical map locations (``format_map_location``), the same in every language; only the labels of the named ones are translated, and labels are never parsed or stored. What a first start, and every start after a session that chose &quot;As saved&quot;, loads with: it opens a file saved on a device this machine lacks instead of failing on it.</extracomment>
        <translation>按保存位置</translation>
    </message>
    <message>
        <source>As saved where possible, else cpu</source>
        <translation>尽量按保存位置，否则 cpu</translation>
    </message>
    <message>
        <source>Custom…</source>
        <translation>自定义…</translation>
    </message>
    <message>
        <source>Map location:</source>
        <translation>映射位置：</translation>
    </message>
    <message>
        <source>Where torch.load puts the tensors (map_location)</source>
        <translation>torch.load 把张量放到哪里（map_location 参数）</translation>
    </message>
    <message>
        <source>Load with torch&apos;s safe unpickler: only tensors and plain containers</source>
        <translation>使用 torch 的安全反序列化器加载：只允许张量和普通容器</translation>
    </message>
    <message>
        <source>Memory-map the file instead of reading it (zip files only)</source>
        <translation>以内存映射方式打开文件，而不是整个读入（仅限 zip 格式）</translation>
    </message>
    <message>
        <source>Load without weights_only?</source>
        <translation>不使用 weights_only 加载？</translation>
    </message>
    <message>
        <source>With weights_only off, torch.load runs whatever code the file&apos;s pickle contains, in the loader process, with your permissions.

Only do this for files you made or fully trust. The setting is not remembered: the next start is safe again.</source>
        <translation>关闭 weights_only 后，torch.load 会在加载进程中以你的权限执行文件 pickle 中包含的任何代码。

只对你自己生成或完全信任的文件这样做。此设置不会被记住：下次启动时会恢复安全设置。</translation>
    </message>
</context>
<context>
    <name>MainWindow</name>
    <message>
        <source>Checkpoints ({patterns});;All files (*)</source>
        <extracomment>What File ▸ Open lists: every layout the reader knows by a file (folders: Open Folder).</extracomment>
        <translation>检查点 ({patterns});;所有文件 (*)</translation>
    </message>
    <message>
        <source>Open a checkpoint (Ctrl+O) or drop one here</source>
        <translation>打开一个检查点（Ctrl+O），或把文件拖放到这里</translation>
    </message>
    <message>
        <source>&amp;File</source>
        <translation>文件(&amp;F)</translation>
    </message>
    <message>
        <source>&amp;Open…</source>
        <translation>打开(&amp;O)…</translation>
    </message>
    <message>
        <source>Open &amp;Folder…</source>
        <translation>打开文件夹(&amp;F)…</translation>
    </message>
    <message>
        <source>Open &amp;URL…</source>
        <translation>打开网址(&amp;U)…</translation>
    </message>
    <message>
        <source>Open &amp;Recent</source>
        <translation>最近打开(&amp;R)</translation>
    </message>
    <message>
        <source>&amp;Close Tab</source>
        <translation>关闭标签页(&amp;C)</translation>
    </message>
    <message>
        <source>&amp;Export…</source>
        <translation>导出(&amp;E)…</translation>
    </message>
    <message>
        <source>Co&amp;mpare…</source>
        <translation>比较(&amp;M)…</translation>
    </message>
    <message>
        <source>&amp;Downloaded Checkpoints…</source>
        <translation>已下载的检查点(&amp;D)…</translation>
    </message>
    <message>
        <source>Compute &amp;Statistics for All</source>
        <translation>计算全部统计信息(&amp;S)</translation>
    </message>
    <message>
        <source>Training Check&amp;point Breakdown…</source>
        <translation>训练检查点构成(&amp;P)…</translation>
    </message>
    <message>
        <source>&amp;Quit</source>
        <translation>退出(&amp;Q)</translation>
    </message>
    <message>
        <source>&amp;View</source>
        <translation>视图(&amp;V)</translation>
    </message>
    <message>
        <source>&amp;Expand All</source>
        <translation>全部展开(&amp;E)</translation>
    </message>
    <message>
        <source>&amp;Collapse All</source>
        <translation>全部折叠(&amp;C)</translation>
    </message>
    <message>
        <source>&amp;Filter Keys…</source>
        <translation>筛选键(&amp;F)…</translation>
    </message>
    <message>
        <source>&amp;Language</source>
        <translation>语言(&amp;L)</translation>
    </message>
    <message>
        <source>Load options</source>
        <translation>加载选项</translation>
    </message>
    <message>
        <source>Language changed. Messages already shown change the next time they are shown.</source>
        <translation>语言已切换。已显示的消息会在下次显示时更新。</translation>
    </message>
    <message>
        <source>Clear</source>
        <translation>清除</translation>
    </message>
    <message>
        <source>Open checkpoint</source>
        <translation>打开检查点</translation>
    </message>
    <message>
        <source>Open checkpoint folder</source>
        <translation>打开检查点文件夹</translation>
    </message>
    <message>
        <source>Open a checkpoint first; export works on the current tab.</source>
        <translation>请先打开一个检查点；导出作用于当前标签页。</translation>
    </message>
    <message>
        <source>Open a checkpoint first, and wait for the one running.</source>
        <translation>请先打开一个检查点，并等待正在进行的任务完成。</translation>
    </message>
    <message>
        <source>Open a checkpoint first.</source>
        <translation>请先打开一个检查点。</translation>
    </message>
    <message>
        <source>Scan: {verdict}</source>
        <translation>扫描结果：{verdict}</translation>
    </message>
</context>
<context>
    <name>ModelCardView</name>
    <message>
        <source>Layers</source>
        <extracomment>The card&apos;s names of sizes and topics, translated where shown (core&apos;s sentences stay English).</extracomment>
        <translation>层数</translation>
    </message>
    <message>
        <source>Decoder layers</source>
        <translation>解码器层数</translation>
    </message>
    <message>
        <source>Hidden size</source>
        <translation>隐藏维度</translation>
    </message>
    <message>
        <source>Intermediate size</source>
        <translation>中间层维度</translation>
    </message>
    <message>
        <source>Attention heads</source>
        <translation>注意力头数</translation>
    </message>
    <message>
        <source>KV heads</source>
        <translation>KV 头数</translation>
    </message>
    <message>
        <source>Experts</source>
        <translation>专家数</translation>
    </message>
    <message>
        <source>Head dimension</source>
        <translation>每头维度</translation>
    </message>
    <message>
        <source>Vocabulary</source>
        <translation>词表大小</translation>
    </message>
    <message>
        <source>Positions</source>
        <translation>位置数</translation>
    </message>
    <message>
        <source>Max positions</source>
        <translation>最大位置数</translation>
    </message>
    <message>
        <source>Token types</source>
        <translation>token 类型数</translation>
    </message>
    <message>
        <source>Stem width</source>
        <translation>主干宽度</translation>
    </message>
    <message>
        <source>Patch size</source>
        <translation>图块大小</translation>
    </message>
    <message>
        <source>Image tokens</source>
        <translation>图像词元数</translation>
    </message>
    <message>
        <source>Latent channels</source>
        <translation>潜空间通道数</translation>
    </message>
    <message>
        <source>Cross-attention size</source>
        <translation>交叉注意力维度</translation>
    </message>
    <message>
        <source>Time embedding size</source>
        <translation>时间嵌入维度</translation>
    </message>
    <message>
        <source>Convolution layers</source>
        <translation>卷积层数</translation>
    </message>
    <message>
        <source>Classes</source>
        <translation>类别数</translation>
    </message>
    <message>
        <source>Input channels</source>
        <translation>输入通道数</translation>
    </message>
    <message>
        <source>Norm</source>
        <translation>归一化</translation>
    </message>
    <message>
        <source>Tied embeddings</source>
        <translation>共享嵌入</translation>
    </message>
    <message>
        <source>Variant</source>
        <translation>变体</translation>
    </message>
    <message>
        <source>Attention</source>
        <translation>注意力</translation>
    </message>
    <message>
        <source>Adapter</source>
        <translation>适配器</translation>
    </message>
    <message>
        <source>Optimizer</source>
        <translation>优化器</translation>
    </message>
    <message>
        <source>Scheduler</source>
        <translation>学习率调度器</translation>
    </message>
    <message>
        <source>Epoch</source>
        <translation>轮次</translation>
    </message>
    <message>
        <source>Step</source>
        <translation>步数</translation>
    </message>
    <message>
        <source>EMA copy</source>
        <translation>EMA 副本</translation>
    </message>
    <message>
        <source>embeddings</source>
        <translation>嵌入</translation>
    </message>
    <message>
        <source>blocks</source>
        <translation>块</translation>
    </message>
    <message>
        <source>head</source>
        <translation>输出头</translation>
    </message>
    <message>
        <source>other</source>
        <translation>其他</translation>
    </message>
    <message>
        <source>No rule set matched.</source>
        <extracomment>Whether a card starts unfolded, by whether it recognised a family: (settings key, default).</extracomment>
        <translation>没有匹配的规则集。</translation>
    </message>
    <message>
        <source>Claim</source>
        <translation>结论</translation>
    </message>
    <message>
        <source>Value</source>
        <translation>值</translation>
    </message>
    <message>
        <source>Family</source>
        <translation>模型族</translation>
    </message>
    <message>
        <source>not determined</source>
        <translation>无法确定</translation>
    </message>
    <message>
        <source>Key prefix</source>
        <translation>键前缀</translation>
    </message>
    <message>
        <source>every key starts with {0} ({1})</source>
        <translation>所有键都以 {0} 开头（{1}）</translation>
    </message>
    <message>
        <source>not stored</source>
        <translation>未存储</translation>
    </message>
    <message>
        <source>{0} modules: {1}; alpha {2}</source>
        <translation>{0} 个模块：{1}；alpha {2}</translation>
    </message>
    <message>
        <source>Parameters</source>
        <translation>参数量</translation>
    </message>
    <message>
        <source>Weights</source>
        <translation>权重</translation>
    </message>
    <message>
        <source>{0} as stored; at {1}</source>
        <translation>按存储类型 {0}；换算为 {1}</translation>
    </message>
    <message>
        <source>Counts only the weights: no activations, KV cache or framework overhead.</source>
        <translation>只计算权重：不含激活值、KV 缓存或框架开销。</translation>
    </message>
    <message>
        <source>fit</source>
        <translation>放得下</translation>
    </message>
    <message>
        <source>do not fit</source>
        <translation>放不下</translation>
    </message>
    <message>
        <source>the weights {0} in {1} free</source>
        <translation>权重在 {1} 可用内存中{0}</translation>
    </message>
    <message>
        <source>the weights {0} in {1} free of {2}</source>
        <translation>权重在 {1} 可用内存（共 {2}）中{0}</translation>
    </message>
    <message>
        <source>Config</source>
        <translation>配置</translation>
    </message>
    <message>
        <source>Contradiction</source>
        <translation>矛盾</translation>
    </message>
    <message>
        <source>Export without “{0}”…</source>
        <translation>导出时去掉“{0}”…</translation>
    </message>
    <message>
        <source>Model: {0}</source>
        <translation>模型：{0}</translation>
    </message>
    <message>
        <source>{0} params</source>
        <translation>{0} 个参数</translation>
    </message>
    <message>
        <source>{0} layers</source>
        <translation>{0} 层</translation>
    </message>
    <message>
        <source>training checkpoint: {0}</source>
        <translation>训练检查点：{0}</translation>
    </message>
    <message>
        <source>Evidence:</source>
        <translation>依据：</translation>
    </message>
</context>
<context>
    <name>OpenUrlDialog</name>
    <message>
        <source>Open URL</source>
        <translation>打开网址</translation>
    </message>
    <message>
        <source>The tree, the safety scan and statistics are read by ranges, without downloading the file; loading it with torch needs a local copy.</source>
        <translation>树、安全扫描和统计信息按字节范围读取，无需下载文件；用 torch 加载需要本地副本。</translation>
    </message>
    <message>
        <source>Address of a checkpoint (https://, s3://, hf://):</source>
        <translation>检查点地址（https://、s3://、hf://）：</translation>
    </message>
    <message>
        <source>{text} is not a URL; open local files with File ▸ Open.</source>
        <translation>{text} 不是网址；本地文件请用“文件 ▸ 打开”。</translation>
    </message>
</context>
<context>
    <name>PlotPane</name>
    <message>
        <source>Save PNG…</source>
        <extracomment>Where &quot;Save PNG…&quot; proposes to write (the panel names it after the tensor shown).</extracomment>
        <translation>保存 PNG…</translation>
    </message>
    <message>
        <source>Save plot</source>
        <translation>保存图表</translation>
    </message>
</context>
<context>
    <name>QTabBar</name>
    <message>
        <source>Close Tab</source>
        <translation>关闭标签页</translation>
    </message>
</context>
<context>
    <name>SliceTableModel</name>
    <message>
        <source>unreadable</source>
        <translation>无法读取</translation>
    </message>
    <message>
        <source>The values could not be read.</source>
        <translation>无法读取这些值。</translation>
    </message>
</context>
<context>
    <name>StatsAllRow</name>
    <message>
        <source>Cancel</source>
        <translation>取消</translation>
    </message>
    <message>
        <source>Computing statistics for every tensor…</source>
        <translation>正在计算所有张量的统计信息…</translation>
    </message>
    <message>
        <source>Computing statistics: {0} of {1}…</source>
        <translation>正在计算统计信息：{0} / {1}…</translation>
    </message>
    <message>
        <source>Statistics could not be computed.</source>
        <translation>无法计算统计信息。</translation>
    </message>
</context>
<context>
    <name>TrainingBreakdown</name>
    <message>
        <source>Training checkpoint — {0}</source>
        <translation>训练检查点 — {0}</translation>
    </message>
    <message>
        <source>Bytes by top-level part</source>
        <translation>各顶层部分的字节数</translation>
    </message>
    <message>
        <source>Parameter</source>
        <translation>参数</translation>
    </message>
    <message>
        <source>Shape</source>
        <translation>形状</translation>
    </message>
    <message>
        <source>Optimizer slot</source>
        <translation>优化器槽位</translation>
    </message>
    <message>
        <source>State bytes</source>
        <translation>状态字节数</translation>
    </message>
    <message>
        <source>State</source>
        <translation>状态</translation>
    </message>
    <message>
        <source>Export model only (“{0}”)…</source>
        <translation>仅导出模型（“{0}”）…</translation>
    </message>
    <message>
        <source>Export model only…</source>
        <translation>仅导出模型…</translation>
    </message>
    <message>
        <source>Close</source>
        <translation>关闭</translation>
    </message>
    <message>
        <source>No optimizer state in this file.</source>
        <translation>此文件中没有优化器状态。</translation>
    </message>
    <message>
        <source>by the parameter names the optimizer saved</source>
        <translation>按优化器保存的参数名匹配</translation>
    </message>
    <message>
        <source>by position: param_groups order against the model&apos;s parameters</source>
        <translation>按位置匹配：param_groups 的顺序对应模型参数的顺序</translation>
    </message>
    <message>
        <source>by position and shape (the counts differ)</source>
        <translation>按位置和形状匹配（数量不一致）</translation>
    </message>
    <message>
        <source>“{0}”: {1} of {2} parameters matched to “{3}”, {4}.</source>
        <translation>“{0}”：{2} 个参数中有 {1} 个与“{3}”匹配，{4}。</translation>
    </message>
    <message>
        <source>the file</source>
        <translation>该文件</translation>
    </message>
    <message>
        <source>(not matched)</source>
        <translation>（未匹配）</translation>
    </message>
    <message>
        <source>  (shape differs!)</source>
        <translation>  （形状不同！）</translation>
    </message>
    <message>
        <source>(no state yet)</source>
        <translation>（尚无状态）</translation>
    </message>
    <message>
        <source>optimizer state of {0}</source>
        <translation>{0} 的优化器状态</translation>
    </message>
    <message>
        <source>optimizer state: {0} ({1}, {2})</source>
        <translation>优化器状态：{0}（{1}，{2}）</translation>
    </message>
</context>
<context>
    <name>TrustFileQuestion</name>
    <message>
        <source>dangerous: can run commands, touch files or reach the network</source>
        <extracomment>The answers a question gives (``answered``&apos;s argument).</extracomment>
        <translation>危险：可执行命令、读写文件或访问网络</translation>
    </message>
    <message>
        <source>unknown: imported and called as the file says</source>
        <translation>未知：会按文件所写被导入并调用</translation>
    </message>
    <message>
        <source>allowed by weights-only loading</source>
        <translation>weights-only 加载允许</translation>
    </message>
    <message>
        <source>Trust {name}?</source>
        <translation>信任 {name}？</translation>
    </message>
    <message>
        <source>It holds TorchScript code: trusting loads it with torch.jit.load, which runs that code.</source>
        <translation>它含有 TorchScript 代码：信任后将用 torch.jit.load 加载，这会运行这些代码。</translation>
    </message>
    <message>
        <source>Its pickle names these, and torch.load will import and call them:</source>
        <translation>它的 pickle 指定了以下对象，torch.load 将导入并调用它们：</translation>
    </message>
    <message>
        <source>The static read found nothing beyond torch&apos;s own globals, but whatever the pickle holds will run.</source>
        <translation>静态读取只发现了 torch 自身的全局对象，但 pickle 中包含的任何内容都会被执行。</translation>
    </message>
    <message>
        <source>&lt;b&gt;Trusting loads {name} with weights_only=False.&lt;/b&gt; torch.load then uses Python&apos;s full pickle: the file can run any code, in the loader process, with your permissions.</source>
        <translation>&lt;b&gt;信任后将以 weights_only=False 加载 {name}。&lt;/b&gt;torch.load 随即使用 Python 完整的 pickle：该文件可以在加载进程中以你的权限执行任何代码。</translation>
    </message>
    <message>
        <source>Only trust files you made or whose source you trust. This applies to this tab only and is forgotten when it closes.</source>
        <translation>只信任你自己生成或来源可信的文件。此信任仅对此标签页有效，关闭后即失效。</translation>
    </message>
    <message>
        <source>torch refuses a custom pickle module under weights-only loading</source>
        <translation>weights-only 加载时 torch 拒绝使用自定义 pickle 模块</translation>
    </message>
    <message>
        <source>Pickle module:</source>
        <translation>pickle 模块：</translation>
    </message>
    <message>
        <source>Trust and load</source>
        <translation>信任并加载</translation>
    </message>
</context>
<context>
    <name>UiLanguage</name>
    <message>
        <source>System</source>
        <extracomment>(setting value, menu label). A language names itself, so only &quot;System&quot; is translated.</extracomment>
        <translation>跟随系统</translation>
    </message>
</context>
<context>
    <name>ValuesView</name>
    <message>
        <source>rows</source>
        <translation>行</translation>
    </message>
    <message>
        <source>columns</source>
        <translation>列</translation>
    </message>
    <message>
        <source>Copy as text</source>
        <translation>复制为文本</translation>
    </message>
    <message>
        <source>Copy as NumPy literal</source>
        <translation>复制为 NumPy 字面量</translation>
    </message>
    <message>
        <source>Copy as NumPy</source>
        <translation>复制为 NumPy</translation>
    </message>
    <message>
        <source>axis {0} ({1})</source>
        <translation>轴 {0}（{1}）</translation>
    </message>
    <message>
        <source>axis {0} =</source>
        <translation>轴 {0} =</translation>
    </message>
    <message>
        <source>Index on axis {0} (length {1})</source>
        <translation>轴 {0} 上的索引（长度 {1}）</translation>
    </message>
    <message>
        <source>Select values to copy.</source>
        <translation>请选择要复制的数值。</translation>
    </message>
    <message>
        <source>Select at most {0} values to copy.</source>
        <translation>最多选择 {0} 个数值进行复制。</translation>
    </message>
    <message>
        <source>The selected values could not be read: {0}</source>
        <translation>无法读取所选的值：{0}</translation>
    </message>
    <message>
        <source>Reading the selected values…</source>
        <translation>正在读取所选数值…</translation>
    </message>
    <message>
        <source>Copied {0} values.</source>
        <translation>已复制 {0} 个数值。</translation>
    </message>
    <message>
        <source>Some values could not be read: {0}</source>
        <translation>部分值无法读取：{0}</translation>
    </message>
</context>
<context>
    <name>VerdictBadge</name>
    <message>
        <source>Safe</source>
        <translation>安全</translation>
    </message>
    <message>
        <source>Unknown globals</source>
        <translation>未知全局对象</translation>
    </message>
    <message>
        <source>Dangerous</source>
        <translation>危险</translation>
    </message>
</context>
</TS>
