"""Texts of the bundled demo corpus (written for this project; CC0). See make_corpus.py."""

BASE = {
"es-fotosintesis": ("La fotosíntesis", """La fotosíntesis es el proceso mediante el cual las plantas, las algas y algunas bacterias transforman la energía de la luz solar en energía química. Para ello utilizan dióxido de carbono del aire y agua absorbida por las raíces, y liberan oxígeno como subproducto.

El proceso ocurre en los cloroplastos, donde la clorofila capta la luz. En la fase luminosa se produce ATP y NADPH; en la fase oscura, o ciclo de Calvin, esa energía se usa para fabricar glucosa. Sin la fotosíntesis no existiría la mayor parte de la vida en la Tierra."""),
"es-fotosintesis-fase-oscura": ("El ciclo de Calvin paso a paso", """El ciclo de Calvin es la etapa de la fotosíntesis que fija el carbono. Tiene lugar en el estroma del cloroplasto y no necesita luz de forma directa, aunque depende del ATP y del NADPH producidos antes.

La enzima rubisco une cada molécula de dióxido de carbono a la ribulosa bifosfato. Después, una serie de reducciones genera gliceraldehído 3-fosfato, del que se obtienen azúcares, y el resto de moléculas regenera el aceptor inicial para que el ciclo continúe. La rubisco es probablemente la proteína más abundante del planeta."""),
"es-ciclo-agua": ("El ciclo del agua", """El ciclo del agua describe el movimiento continuo del agua entre los océanos, la atmósfera y la tierra. El sol calienta la superficie del mar y de los lagos, y el agua se evapora; las plantas también liberan vapor mediante la transpiración.

Al ascender, el vapor se enfría y se condensa en pequeñas gotas que forman las nubes. Cuando las gotas crecen, caen como lluvia, nieve o granizo. Parte del agua se infiltra en el suelo y alimenta los acuíferos, y otra parte corre por ríos hasta volver al mar, donde el ciclo empieza de nuevo."""),
"es-revolucion-francesa": ("La Revolución francesa", """La Revolución francesa comenzó en 1789 y transformó la sociedad y la política de Francia. La crisis económica, los privilegios de la nobleza y del clero y las ideas de la Ilustración alimentaron el descontento del tercer estado.

La toma de la Bastilla, el 14 de julio, se convirtió en su símbolo. La Asamblea Nacional aprobó la Declaración de los Derechos del Hombre y del Ciudadano, abolió el feudalismo y, años después, proclamó la república. El periodo terminó con el ascenso de Napoleón Bonaparte en 1799."""),
"es-imperio-romano": ("Auge y caída del Imperio romano", """El Imperio romano nació en el año 27 a. C., cuando Octavio recibió el título de Augusto. Durante los dos primeros siglos vivió la llamada Pax Romana, una época de estabilidad en la que el comercio, las calzadas y el derecho romano se extendieron por todo el Mediterráneo.

A partir del siglo III, las crisis económicas, las guerras civiles y la presión de los pueblos germánicos debilitaron el poder central. En 395 el imperio se dividió definitivamente en dos, y en 476 fue depuesto Rómulo Augústulo, el último emperador de Occidente."""),
"es-teorema-pitagoras": ("El teorema de Pitágoras", """El teorema de Pitágoras afirma que, en todo triángulo rectángulo, el cuadrado de la hipotenusa es igual a la suma de los cuadrados de los catetos. Si los catetos miden 3 y 4 centímetros, la hipotenusa mide 5, porque 9 más 16 es 25.

Este resultado permite calcular distancias sin medirlas directamente. Los arquitectos lo usan para comprobar ángulos rectos, y en un plano cartesiano sirve para hallar la distancia entre dos puntos. Existen cientos de demostraciones distintas, algunas de ellas puramente geométricas."""),
"es-fracciones": ("Cómo sumar fracciones", """Para sumar dos fracciones con el mismo denominador basta con sumar los numeradores y mantener el denominador. Por ejemplo, dos quintos más un quinto son tres quintos.

Si los denominadores son distintos, primero hay que buscar un denominador común, normalmente el mínimo común múltiplo. Después se transforma cada fracción en otra equivalente con ese denominador, se suman los numeradores y, por último, se simplifica el resultado si es posible. Así, un medio más un tercio es igual a tres sextos más dos sextos, es decir, cinco sextos."""),
"es-sistema-solar": ("El sistema solar", """El sistema solar está formado por el Sol y todos los cuerpos que giran a su alrededor: ocho planetas, sus lunas, los planetas enanos, los asteroides y los cometas. El Sol concentra más del 99 % de toda la masa del sistema.

Los cuatro planetas interiores, Mercurio, Venus, la Tierra y Marte, son rocosos y pequeños. Más allá del cinturón de asteroides se encuentran los gigantes gaseosos Júpiter y Saturno y los gigantes helados Urano y Neptuno. Plutón fue considerado planeta hasta 2006, cuando pasó a ser un planeta enano."""),
"es-celula": ("La célula, unidad de la vida", """La célula es la unidad estructural y funcional de todos los seres vivos. Algunos organismos, como las bacterias, están formados por una sola célula, mientras que el cuerpo humano contiene billones de ellas.

Las células procariotas no tienen núcleo y su material genético está disperso en el citoplasma. Las células eucariotas, en cambio, guardan el ADN dentro de un núcleo rodeado por una membrana y poseen orgánulos especializados, como las mitocondrias, que producen energía, o el retículo endoplasmático, que fabrica proteínas y lípidos."""),
"es-ortografia-acentos": ("Reglas de acentuación", """En español, las palabras agudas llevan tilde cuando terminan en vocal, en n o en s, como canción o café. Las llanas, que son la mayoría, la llevan cuando no terminan en vocal, n ni s, como árbol o lápiz.

Las palabras esdrújulas y sobresdrújulas se acentúan siempre, por ejemplo música o dígamelo. Los monosílabos, en general, no llevan tilde, salvo la tilde diacrítica que distingue palabras como él y el, tú y tu o sí y si."""),
"es-ortografia-mayusculas": ("Cuándo usar mayúsculas", """La mayúscula inicial se usa al comienzo de un texto y después de un punto. También se escriben con mayúscula los nombres propios de personas, lugares, instituciones y festividades, como Lucía, Valencia, la Universidad de Salamanca o la Navidad.

En cambio, los días de la semana, los meses y las estaciones del año se escriben con minúscula en español, a diferencia del inglés. Tampoco se usa mayúscula para los gentilicios ni para los nombres de los idiomas: se dice los franceses o el alemán."""),
"es-python-variables": ("Variables y tipos en Python", """En Python una variable es un nombre que apunta a un valor. No hace falta declarar su tipo: basta con escribir edad = 30 para crear una variable entera, o nombre = "Ana" para una cadena de texto.

Los tipos básicos son los enteros, los números de coma flotante, las cadenas y los booleanos. La función type permite saber el tipo de un valor, y funciones como int, float o str sirven para convertir entre ellos. Conviene elegir nombres descriptivos en minúsculas, separando las palabras con guiones bajos."""),
"es-python-bucles": ("Bucles for y while en Python", """Un bucle for recorre los elementos de una secuencia, como una lista o una cadena, y ejecuta el mismo bloque de código para cada uno. Con la función range se pueden generar secuencias de números, por ejemplo para repetir una acción diez veces.

El bucle while, en cambio, se repite mientras una condición sea verdadera, por lo que hay que asegurarse de que la condición deje de cumplirse en algún momento. Las instrucciones break y continue permiten salir del bucle o saltar a la siguiente vuelta."""),
"es-cambio-climatico": ("Qué es el cambio climático", """El cambio climático es la variación a largo plazo de las temperaturas y de los patrones del clima. Aunque existen causas naturales, desde el siglo XIX la actividad humana es el principal motor, sobre todo por la quema de carbón, petróleo y gas.

Estos combustibles emiten gases de efecto invernadero, como el dióxido de carbono y el metano, que retienen el calor en la atmósfera. Sus consecuencias incluyen sequías más intensas, el deshielo de los glaciares, la subida del nivel del mar y la pérdida de biodiversidad."""),
"es-tabla-periodica": ("La tabla periódica", """La tabla periódica organiza los elementos químicos según su número atómico, es decir, el número de protones de su núcleo. Dmitri Mendeléyev publicó la primera versión en 1869 y dejó huecos para elementos que aún no se conocían.

Las filas se llaman periodos y las columnas, grupos. Los elementos de un mismo grupo tienen propiedades químicas parecidas porque comparten la configuración de su capa externa de electrones: los gases nobles apenas reaccionan, mientras que los metales alcalinos reaccionan con violencia con el agua."""),
"es-quijote": ("Don Quijote de la Mancha", """Don Quijote de la Mancha, publicado por Miguel de Cervantes en dos partes, en 1605 y 1615, es considerado la primera novela moderna. Cuenta la historia de un hidalgo que, de tanto leer libros de caballerías, pierde el juicio y decide hacerse caballero andante.

Acompañado por su escudero Sancho Panza, un labrador sencillo y práctico, recorre los caminos de La Mancha buscando aventuras. La novela contrapone el idealismo de don Quijote al realismo de Sancho y se burla de los libros de caballerías, pero también reflexiona sobre la literatura y la locura."""),
"es-oferta-demanda": ("La ley de la oferta y la demanda", """La ley de la oferta y la demanda explica cómo se fijan los precios en un mercado libre. Cuando el precio de un producto sube, los consumidores compran menos, y los productores están dispuestos a vender más.

El punto en que la cantidad que se quiere comprar coincide con la que se quiere vender se llama equilibrio. Si hay escasez, el precio tiende a subir; si hay excedente, tiende a bajar. Factores como la renta, los gustos o el precio de los productos sustitutivos desplazan las curvas y cambian el equilibrio."""),
"en-newton-laws": ("Newton's three laws of motion", """Newton's first law states that an object stays at rest or keeps moving in a straight line at constant speed unless a net force acts on it. This tendency to resist changes in motion is called inertia.

The second law says that the acceleration of an object is proportional to the net force and inversely proportional to its mass, usually written as F = ma. The third law states that for every action there is an equal and opposite reaction: when you push against a wall, the wall pushes back on you with the same force."""),
"en-newton-history": ("How Newton wrote the Principia", """Isaac Newton published the Philosophiae Naturalis Principia Mathematica in 1687, after the astronomer Edmond Halley encouraged him to write down his ideas on orbital motion and paid for the printing himself.

Newton had developed much of the work during the plague years of 1665 and 1666, when Cambridge closed and he returned to his family farm. The book was written in Latin and used geometry rather than the calculus he had invented, and its publication led to a bitter priority dispute with Robert Hooke."""),
"en-dna": ("What is DNA?", """DNA, or deoxyribonucleic acid, is the molecule that carries the genetic instructions of living organisms. It is made of two long strands that twist around each other to form a double helix, a structure described by Watson and Crick in 1953 using X-ray images by Rosalind Franklin.

Each strand is a chain of nucleotides containing one of four bases: adenine, thymine, guanine or cytosine. Adenine always pairs with thymine and guanine with cytosine, so each strand can serve as a template to copy the other when a cell divides."""),
"en-world-war-1": ("The causes of the First World War", """The First World War began in 1914 after the assassination of Archduke Franz Ferdinand of Austria-Hungary in Sarajevo. The murder set off a chain of declarations of war because the great powers were bound by a system of alliances.

Historians also point to deeper causes: militarism and an arms race between Britain and Germany, imperial rivalry over colonies, and nationalism in the Balkans. Within weeks, the conflict had drawn in Germany, Russia, France and Britain, and it would last more than four years."""),
"en-compound-interest": ("Understanding compound interest", """Compound interest is interest calculated on both the original amount and the interest that has already been added. If you invest 1,000 dollars at 5 percent per year, you earn 50 dollars in the first year, but in the second year you earn interest on 1,050 dollars.

Over long periods this effect becomes powerful: at 5 percent, money roughly doubles every 14 years. The same mathematics works against you with debt, which is why credit card balances that are not paid off can grow surprisingly fast."""),
"en-git-basics": ("Getting started with Git", """Git is a version control system that records the history of changes to a set of files. Each snapshot is called a commit, and it stores who made the change, when and why, so you can always go back to an earlier version.

To start, run git init in a project folder, then use git add to choose which changes to include and git commit to save them. Branches let you work on a new feature without touching the main line of development, and git merge brings the work back together when it is ready."""),
"en-study-techniques": ("Study techniques that work", """Research in cognitive psychology shows that some study habits are far more effective than others. Rereading notes and highlighting feel productive but produce little lasting learning.

Two techniques stand out. Retrieval practice means testing yourself, for example with flashcards or by writing down everything you remember, instead of looking at the material again. Spaced repetition means reviewing the same topic over several sessions separated by days, rather than cramming it all the night before an exam."""),
"en-volcanoes": ("How volcanoes form", """A volcano forms where molten rock, called magma, reaches the surface of the Earth. Most volcanoes are found at the boundaries of tectonic plates, either where plates pull apart, as in Iceland, or where one plate sinks beneath another, as around the Pacific Ring of Fire.

Some volcanoes, such as those of Hawaii, sit above hot spots in the middle of a plate. When pressure from gases in the magma builds up, the volcano erupts, releasing lava, ash and gas. Explosive eruptions happen when the magma is thick and traps the gas."""),
"en-essay-writing": ("Writing a persuasive essay", """A persuasive essay tries to convince the reader to accept a point of view. It starts with an introduction that presents the topic and ends with a clear thesis statement, the one sentence that sums up your argument.

Each body paragraph should develop a single reason that supports the thesis, backed by evidence such as data, examples or expert opinion. A strong essay also acknowledges the main counterargument and explains why it is weaker. The conclusion restates the thesis in new words and leaves the reader with something to think about."""),
"en-immune-system": ("How the immune system protects us", """The immune system defends the body against bacteria, viruses and other pathogens. Its first line of defence is the innate immune system, which includes the skin, mucus and white blood cells that attack any intruder quickly but without targeting a specific germ.

The adaptive immune system is slower but precise. B cells produce antibodies that recognise particular pathogens, and T cells destroy infected cells. After an infection, memory cells remain in the body, so a second encounter with the same germ produces a faster and stronger response. Vaccines work by training this memory."""),
}

# Light edits: a few words changed, added or removed; same sentences.
LIGHT = {
"es-revolucion-francesa": ("es-revolucion-francesa-resumen", """La Revolución francesa empezó en 1789 y transformó por completo la sociedad y la política de Francia. La crisis económica, los privilegios de la nobleza y del clero y las nuevas ideas de la Ilustración alimentaron el malestar del tercer estado.

La toma de la Bastilla, el 14 de julio de 1789, se convirtió en su gran símbolo. La Asamblea Nacional aprobó la Declaración de los Derechos del Hombre y del Ciudadano, abolió el feudalismo y, unos años después, proclamó la república. Este periodo terminó con la llegada al poder de Napoleón Bonaparte en 1799."""),
"es-sistema-solar": ("es-sistema-solar-apuntes", """El sistema solar está compuesto por el Sol y todos los cuerpos que giran a su alrededor: ocho planetas, sus satélites, los planetas enanos, los asteroides y los cometas. El Sol reúne más del 99 % de la masa total del sistema.

Los cuatro planetas interiores (Mercurio, Venus, la Tierra y Marte) son rocosos y pequeños. Más allá del cinturón de asteroides están los gigantes gaseosos Júpiter y Saturno y los gigantes de hielo Urano y Neptuno. Plutón fue considerado un planeta hasta 2006, año en que pasó a clasificarse como planeta enano."""),
"es-cambio-climatico": ("es-cambio-climatico-blog", """El cambio climático es la variación a largo plazo de las temperaturas y de los patrones meteorológicos. Aunque hay causas naturales, desde el siglo XIX la actividad humana es el motor principal, sobre todo por la quema de carbón, petróleo y gas natural.

Estos combustibles liberan gases de efecto invernadero, como el dióxido de carbono y el metano, que atrapan el calor en la atmósfera. Entre sus consecuencias están las sequías más intensas, el deshielo de los glaciares, la subida del nivel del mar y una grave pérdida de biodiversidad."""),
"en-newton-laws": ("en-newton-laws-notes", """Newton's first law says that an object stays at rest or keeps moving in a straight line at a constant speed unless a net force acts on it. This tendency to resist changes in motion is known as inertia.

The second law states that the acceleration of an object is proportional to the net force on it and inversely proportional to its mass, often written as F = ma. The third law says that for every action there is an equal and opposite reaction: if you push against a wall, the wall pushes back on you with exactly the same force."""),
"en-compound-interest": ("en-compound-interest-guide", """Compound interest is interest that is calculated on both the original amount and the interest already added to it. If you invest $1,000 at 5% per year, you earn $50 in the first year, but in the second year you earn interest on $1,050.

Over long periods the effect becomes very powerful: at 5%, money roughly doubles every 14 years. The same maths works against you when you borrow, which is why unpaid credit card balances can grow surprisingly quickly."""),
}

# Heavy rewrites: the same content told in other words and another order.
HEAVY = {
"es-fracciones": ("es-fracciones-explicacion", """¿Tienes que sumar fracciones? Lo primero es mirar los denominadores. Cuando son diferentes, no se pueden sumar tal cual: hay que reducirlas a común denominador, y lo más cómodo es usar el mínimo común múltiplo de ambos.

Cada fracción se reescribe como una equivalente con ese nuevo denominador; entonces ya solo queda sumar los de arriba y dejar igual el de abajo, y simplificar al final. Por ejemplo, 1/2 + 1/3 se convierte en 3/6 + 2/6, que da 5/6. Y si desde el principio el denominador es el mismo, como en 2/5 + 1/5, el resultado es directamente 3/5."""),
"es-quijote": ("es-quijote-resena", """Pocas obras han influido tanto como la novela de Cervantes, aparecida en 1605 con una segunda parte en 1615 y tenida por muchos como el origen de la novela moderna. Su protagonista es un hidalgo manchego que enloquece leyendo historias de caballeros y se lanza a imitarlas.

En sus andanzas por La Mancha le acompaña Sancho Panza, un campesino con los pies en la tierra que le sirve de escudero. El contraste entre los sueños del caballero y el sentido común de Sancho sostiene el libro, que parodia las novelas de caballerías y, a la vez, plantea preguntas sobre la ficción y la locura."""),
"en-immune-system": ("en-immune-system-explainer", """Your body fights germs with two cooperating systems. The fast one, innate immunity, is always on guard: skin and mucus form barriers, and white blood cells attack anything foreign, without caring exactly what it is.

The second system, adaptive immunity, takes longer to respond but aims precisely. Antibodies made by B cells lock onto a specific bacterium or virus, while T cells kill the body's own cells once they are infected. Memory cells that survive an infection mean the next encounter with that germ is answered faster and harder, and this is exactly what vaccination exploits."""),
"es-oferta-demanda": ("es-oferta-demanda-clase", """En un mercado libre los precios no los decide nadie en particular: surgen del encuentro entre compradores y vendedores. Si algo se encarece, la gente tiende a comprar menos de ese producto, mientras que a las empresas les interesa producir y vender más.

El precio de equilibrio es aquel en el que lo que se desea comprar y lo que se desea vender coinciden. Cuando falta producto, el precio sube, y cuando sobra, baja. Los cambios en los ingresos de los consumidores, en sus preferencias o en el precio de los bienes sustitutivos mueven las curvas y llevan a un equilibrio nuevo."""),
"en-study-techniques": ("en-study-techniques-tips", """Highlighting your textbook and reading your notes again and again may feel like studying, but psychologists have found these habits do little for long-term memory.

What works better? First, quiz yourself: use flashcards or try to write out everything you can recall before you look at the material again. This is known as retrieval practice. Second, space out your reviews across several days instead of cramming the night before the exam; spaced repetition makes the knowledge stick much longer."""),
}

# New articles that reuse one paragraph of a base article inside otherwise different text.
SHARED = {
"es-celula": ("es-guia-biologia-tema1", "Guía de estudio: biología, tema 1", [
    """Este tema introduce los conceptos básicos que necesitarás durante todo el curso de biología. Antes del examen, repasa el vocabulario del glosario y completa los ejercicios del cuaderno de actividades.""",
    1,
    """Para la práctica de laboratorio observaremos al microscopio una muestra de epidermis de cebolla teñida con azul de metileno y dibujaremos las estructuras que se distingan."""]),
"en-git-basics": ("en-course-intro-programming", "Intro to Programming: week 3", [
    """This week we leave the interactive console behind and start organising real projects. Make sure your editor is installed before the lab session on Thursday, and bring your laptop charged.""",
    1,
    """The homework is to create a repository for your calculator project, make at least five commits with meaningful messages and submit the link on the course forum by Sunday night."""]),
"es-imperio-romano": ("es-curso-historia-unidad4", "Historia universal: unidad 4", [
    """En esta unidad estudiaremos la Antigüedad tardía y el paso a la Edad Media. Al final de cada apartado encontrarás un mapa y una línea del tiempo para situar los acontecimientos.""",
    1,
    """Como actividad, elabora un esquema con las causas internas y externas de la crisis y compáralo con el de un compañero en la próxima sesión."""]),
}

EXACT = {  # base id -> copy id (republished verbatim under another id and url)
    "es-fotosintesis": "es-fotosintesis-repost",
    "es-teorema-pitagoras": "es-pitagoras-copia-blog",
    "en-dna": "en-dna-repost",
    "es-python-variables": "es-python-variables-mirror",
}

HTML = {  # base id -> copy id (same text inside another site's HTML template)
    "es-ciclo-agua": "es-ciclo-agua-web",
    "es-celula": "es-celula-portal",
    "en-volcanoes": "en-volcanoes-site",
    "es-tabla-periodica": "es-tabla-periodica-web",
}

SAME_TOPIC = [  # pairs on the same topic that are NOT duplicates (hard negatives)
    ("es-fotosintesis", "es-fotosintesis-fase-oscura"),
    ("es-python-variables", "es-python-bucles"),
    ("en-newton-laws", "en-newton-history"),
    ("es-ortografia-acentos", "es-ortografia-mayusculas"),
]
